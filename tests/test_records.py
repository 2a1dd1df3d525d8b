"""`export_session` and `import_session`: whole sessions in and out of every backend."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.backends import Backend, unique_id
from turnstore import (
    ConfigurationError,
    InvalidItemError,
    SessionRecord,
    export_session,
    export_sessions,
    import_session,
    import_sessions,
)
from turnstore.records import content_digest

ITEMS: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather in Paris?"},
    {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{}"},
    {"type": "function_call_output", "call_id": "c1", "output": "22 °C", "score": 1.5},
]


def record(session_id: str, items: list[dict[str, Any]] = ITEMS, **fields: Any) -> SessionRecord:
    return SessionRecord(session_id=session_id, items=items, **fields)


async def test_export_of_a_missing_session_is_none(backend: Backend) -> None:
    assert await export_session(backend.store, unique_id()) is None


async def test_import_then_export_gives_back_items_and_metadata(backend: Backend) -> None:
    sid = unique_id()
    outcome = await import_session(backend.store, record(sid, metadata={"user_id": "u1"}))
    assert outcome == "created"
    exported = await export_session(backend.store, sid)
    assert exported is not None
    assert exported.items == ITEMS
    assert exported.metadata == {"user_id": "u1"}
    assert exported.expires_at is None
    assert exported.corrupt == ()
    assert exported.stored_bytes > 0


async def test_importing_equal_content_writes_nothing(backend: Backend) -> None:
    sid = unique_id()
    await import_session(backend.store, record(sid, metadata={"k": "v"}))
    before = await backend.store.get_info(sid)
    assert await import_session(backend.store, record(sid, metadata={"k": "v"})) == "unchanged"
    assert await backend.store.get_info(sid) == before


async def test_import_replaces_different_content_whole(backend: Backend) -> None:
    sid = unique_id()
    session = backend.session(sid)
    await session.add_items(ITEMS[:1] * 4)
    await session.update_metadata({"old": "1"})
    outcome = await import_session(backend.store, record(sid, metadata={"new": "2"}))
    assert outcome == "replaced"
    assert await session.get_items() == ITEMS
    info = await session.get_info()
    assert info is not None and info.metadata == {"new": "2"}


async def test_import_refuses_an_invalid_item_and_writes_nothing(backend: Backend) -> None:
    sid = unique_id()
    with pytest.raises(InvalidItemError, match=r"items\[1\]"):
        await import_session(backend.store, record(sid, [ITEMS[0], "not an item"]))  # type: ignore[list-item]
    assert await backend.store.get_info(sid) is None


async def test_import_keeps_the_expiry_time_and_skips_an_expired_record(
    backend: Backend,
) -> None:
    now = datetime.now(timezone.utc)
    sid, expired = unique_id(), unique_id()
    assert await import_session(backend.store, record(sid, expires_at=now + timedelta(hours=1)))
    info = await backend.store.get_info(sid)
    assert info is not None and info.expires_at is not None
    assert abs((info.expires_at - (now + timedelta(hours=1))).total_seconds()) < 5
    outcome = await import_session(backend.store, record(expired, expires_at=now))
    assert outcome == "expired"
    assert await backend.store.get_info(expired) is None


async def test_export_reports_an_undecodable_item_with_its_position(backend: Backend) -> None:
    session = backend.session()
    await session.add_items(ITEMS[:1])
    await backend.inject_raw(session, "{broken")
    await session.add_items(ITEMS[1:2])
    exported = await export_session(backend.store, session.session_id)
    assert exported is not None
    assert exported.items == ITEMS[:2]
    assert [(bad.session_id, bad.position) for bad in exported.corrupt] == [(session.session_id, 1)]


def test_content_digest_ignores_formatting_but_not_content() -> None:
    items = [{"a": 1, "b": [1.0, "é"]}]
    same = content_digest([{"b": [1.0, "é"], "a": 1}], {"k": "v"})
    assert content_digest(items, {"k": "v"}) == same
    assert content_digest([{"a": 1, "b": [1, "é"]}], {"k": "v"}) != same  # 1 is not 1.0
    assert content_digest(items, {}) != same
    assert content_digest(items + items, {"k": "v"}) != same


async def test_import_keeps_the_records_creation_and_update_times(backend: Backend) -> None:
    created = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    updated = datetime(2025, 6, 7, 8, 9, 10, tzinfo=timezone.utc)
    record = SessionRecord(
        session_id=unique_id(),
        items=[{"role": "user", "content": "hi"}],
        created_at=created,
        updated_at=updated,
    )
    await import_session(backend.store, record)
    info = await backend.store.get_info(record.session_id)
    assert info is not None
    assert (info.created_at, info.updated_at) == (created, updated)
    page = await backend.store.list_sessions()
    assert [i.updated_at for i in page.sessions if i.session_id == record.session_id] == [updated]


# -- many sessions at once: export_sessions, import_sessions -------------------------------


async def test_export_sessions_answers_in_order_with_none_for_a_missing_one(
    backend: Backend,
) -> None:
    first, missing, last = unique_id(), unique_id(), unique_id()
    await import_session(backend.store, record(first, ITEMS[:1], metadata={"n": "1"}))
    await import_session(backend.store, record(last, ITEMS, metadata={"n": "3"}))
    records = await export_sessions(backend.store, [last, missing, first])
    assert [None if r is None else (r.session_id, r.items, r.metadata) for r in records] == [
        (last, ITEMS, {"n": "3"}),
        None,
        (first, ITEMS[:1], {"n": "1"}),
    ]


async def test_export_sessions_keeps_each_sessions_times_and_expiry(backend: Backend) -> None:
    sid = unique_id()
    created = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    expires = datetime.now(timezone.utc) + timedelta(hours=2)
    await import_session(
        backend.store,
        record(
            sid, created_at=created, updated_at=created + timedelta(minutes=5), expires_at=expires
        ),
    )
    (exported,) = await export_sessions(backend.store, [sid])
    assert exported is not None
    assert (exported.created_at, exported.updated_at) == (created, created + timedelta(minutes=5))
    assert exported.expires_at is not None
    assert abs((exported.expires_at - expires).total_seconds()) < 2


async def test_import_sessions_gives_each_record_its_own_outcome(backend: Backend) -> None:
    same, other, new = unique_id(), unique_id(), unique_id()
    await import_session(backend.store, record(same))
    await import_session(backend.store, record(other, ITEMS[:1]))
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    outcomes = await import_sessions(
        backend.store,
        [record(same), record(other), record(new), record(unique_id(), expires_at=past)],
    )
    assert outcomes == ["unchanged", "replaced", "created", "expired"]
    (copied,) = await export_sessions(backend.store, [other])
    assert copied is not None and copied.items == ITEMS


async def test_import_sessions_dry_run_gives_the_outcomes_and_writes_nothing(
    backend: Backend,
) -> None:
    same, other, new = unique_id(), unique_id(), unique_id()
    await import_session(backend.store, record(same))
    await import_session(backend.store, record(other, ITEMS[:1]))
    outcomes = await import_sessions(
        backend.store,
        [record(same), record(other), record(new), record(unique_id(), items=[1])],
        dry_run=True,
    )
    assert outcomes[:3] == ["unchanged", "replaced", "created"]
    assert isinstance(outcomes[3], InvalidItemError)
    untouched, absent = await export_sessions(backend.store, [other, new])
    assert untouched is not None and untouched.items == ITEMS[:1]
    assert absent is None


async def test_import_sessions_refuses_a_bad_record_and_writes_the_others(
    backend: Backend,
) -> None:
    good, bad = unique_id(), unique_id()
    outcomes = await import_sessions(
        backend.store, [record(bad, [{"n": float("nan")}]), record(good)]
    )
    assert isinstance(outcomes[0], InvalidItemError)
    assert outcomes[1] == "created"
    assert (await export_sessions(backend.store, [bad]))[0] is None


async def test_import_sessions_refuses_an_empty_session_id(backend: Backend) -> None:
    (outcome,) = await import_sessions(backend.store, [record("")])
    assert isinstance(outcome, ConfigurationError)


async def test_a_batch_of_many_sessions_round_trips(backend: Backend) -> None:
    records = [record(unique_id(), ITEMS[: 1 + n % 3], metadata={"n": str(n)}) for n in range(300)]
    assert set(await import_sessions(backend.store, records)) == {"created"}
    exported = await export_sessions(backend.store, [r.session_id for r in records])
    assert [(r.items, r.metadata) if r else None for r in exported] == [
        (r.items, r.metadata) for r in records
    ]
