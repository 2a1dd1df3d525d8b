"""`export_session` and `import_session`: whole sessions in and out of every backend."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.backends import Backend, unique_id
from turnstore import InvalidItemError, SessionRecord, export_session, import_session
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
