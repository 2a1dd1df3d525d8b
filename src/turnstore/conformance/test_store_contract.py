"""The store contract (SPEC section 2, "Stores"), once, for every backend and topology."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import turnstore.store
from turnstore import ConfigurationError, SessionClosedError, SessionStore
from turnstore.conformance.harness import Backend, unique_id
from turnstore.conformance.items import turn, user


async def make_sessions(backend: Backend, count: int, **options: Any) -> list[str]:
    """Create `count` sessions in order, each written a little after the previous one."""
    ids = [unique_id(f"n{n:03d}") for n in range(count)]
    for session_id in ids:
        await backend.store.session(session_id, **options).add_items([user(session_id)])
        await asyncio.sleep(0.002)  # distinct update times
    return ids


async def all_pages(store: SessionStore, limit: int, **kwargs: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = await store.list_sessions(limit=limit, cursor=cursor, **kwargs)
        pages.append([info.session_id for info in page.sessions])
        cursor = page.next_cursor
        if cursor is None:
            return pages
        assert len(pages) < 100, "paging does not end"


def test_store_satisfies_the_protocol(backend: Backend) -> None:
    assert isinstance(backend.store, SessionStore)


async def test_a_store_session_override_applies_to_that_session_only(backend: Backend) -> None:
    session_id = unique_id()
    windowed = backend.store.session(session_id, max_turns=1)
    plain = backend.store.session(session_id)
    assert windowed.max_turns == 1
    await windowed.add_items(turn(0) + turn(1))
    assert await windowed.get_items() == turn(1)
    assert await plain.get_items() == turn(0) + turn(1)


async def test_store_sessions_share_the_stores_storage(backend: Backend) -> None:
    session_id = unique_id()
    await backend.store.session(session_id).add_items(turn(0))
    info = await backend.store.get_info(session_id)
    assert info is not None and info.item_count == len(turn(0))
    assert await backend.store.session(session_id).get_items() == turn(0)


def test_unknown_session_override_is_a_configuration_error(backend: Backend) -> None:
    with pytest.raises(ConfigurationError, match="bogus"):
        backend.store.session("s", bogus=1)


async def test_get_info_of_a_missing_session_is_none(backend: Backend) -> None:
    assert await backend.store.get_info(unique_id()) is None


async def test_get_info_reports_a_session(backend: Backend) -> None:
    session = backend.store.session(unique_id())
    await session.add_items(turn(0))
    await session.update_metadata({"user_id": "u1"})
    info = await backend.store.get_info(session.session_id)
    assert info is not None
    assert (info.session_id, info.item_count, info.metadata) == (
        session.session_id,
        5,
        {"user_id": "u1"},
    )


async def test_list_sessions_is_most_recently_updated_first(backend: Backend) -> None:
    ids = await make_sessions(backend, 5)
    await backend.store.session(ids[1]).add_items([user("again")])
    page = await backend.store.list_sessions()
    assert [info.session_id for info in page.sessions] == [ids[1], ids[4], ids[3], ids[2], ids[0]]
    assert page.next_cursor is None
    assert page.sessions[0].item_count == 2


async def test_list_sessions_pages_through_everything_once(backend: Backend) -> None:
    ids = await make_sessions(backend, 23)
    pages = await all_pages(backend.store, limit=5)
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert [sid for page in pages for sid in page] == ids[::-1]


async def test_paging_neither_skips_nor_repeats_under_concurrent_writes(
    backend: Backend,
) -> None:
    stable = await make_sessions(backend, 30)
    stop = asyncio.Event()

    async def churn() -> None:
        n = 0
        while not stop.is_set():
            await backend.store.session(f"churn-{n % 10}").add_items([user(str(n))])
            n += 1
            await asyncio.sleep(0)

    writer = asyncio.create_task(churn())
    try:
        seen: list[str] = []
        cursor: str | None = None
        while True:
            page = await backend.store.list_sessions(limit=4, cursor=cursor)
            seen += [i.session_id for i in page.sessions if not i.session_id.startswith("churn")]
            await asyncio.sleep(0.005)
            cursor = page.next_cursor
            if cursor is None:
                break
    finally:
        stop.set()
        await writer
    assert seen == stable[::-1]


async def test_list_sessions_filters_on_every_metadata_pair(backend: Backend) -> None:
    wanted = []
    for n in range(6):
        session = backend.store.session(unique_id())
        await session.update_metadata({"user_id": f"u{n % 2}", "tier": "pro" if n < 3 else "free"})
        if n % 2 == 0 and n < 3:
            wanted.append(session.session_id)
    page = await backend.store.list_sessions(metadata={"user_id": "u0", "tier": "pro"})
    assert sorted(i.session_id for i in page.sessions) == sorted(wanted)
    assert page.next_cursor is None
    assert (await backend.store.list_sessions(metadata={"user_id": "nobody"})).sessions == []


async def test_metadata_filtered_paging_is_complete(backend: Backend) -> None:
    wanted = []
    for n in range(20):
        session = backend.store.session(unique_id())
        await session.update_metadata({"even": str(n % 2 == 0)})
        if n % 2 == 0:
            wanted.append(session.session_id)
        await asyncio.sleep(0.002)
    pages = await all_pages(backend.store, limit=3, metadata={"even": "True"})
    assert [sid for page in pages for sid in page] == wanted[::-1]


async def test_count_sessions_counts_live_sessions(backend: Backend) -> None:
    assert await backend.store.count_sessions() == 0
    await make_sessions(backend, 7)
    assert await backend.store.count_sessions() == 7


async def test_delete_session_reports_whether_it_existed(backend: Backend) -> None:
    (session_id,) = await make_sessions(backend, 1)
    assert await backend.store.delete_session(session_id) is True
    assert await backend.store.delete_session(session_id) is False
    assert await backend.store.get_info(session_id) is None
    assert (await backend.store.list_sessions()).sessions == []
    assert await backend.store.count_sessions() == 0


async def live_ids(backend: Backend) -> set[str]:
    return {i for page in await all_pages(backend.store, 100) for i in page}


async def test_delete_sessions_by_metadata_deletes_exactly_the_matches(backend: Backend) -> None:
    ids = await make_sessions(backend, 5)
    for session_id in ids[:3]:
        await backend.store.session(session_id).update_metadata({"tenant": "a"})
    await backend.store.session(ids[3]).update_metadata({"tenant": "b"})
    assert await backend.store.delete_sessions(metadata={"tenant": "a"}) == 3
    assert await live_ids(backend) == set(ids[3:])
    assert await backend.store.delete_sessions(metadata={"tenant": "a"}) == 0


async def test_delete_sessions_updated_before_keeps_the_newer_ones(backend: Backend) -> None:
    old = await make_sessions(backend, 3)
    await asyncio.sleep(0.05)
    cutoff = datetime.now(timezone.utc)
    await asyncio.sleep(0.05)
    new = await make_sessions(backend, 2)
    assert await backend.store.delete_sessions(updated_before=cutoff) == len(old)
    assert await live_ids(backend) == set(new)


async def test_delete_sessions_conditions_must_all_match(backend: Backend) -> None:
    ids = await make_sessions(backend, 2)
    await backend.store.session(ids[0]).update_metadata({"tenant": "a"})
    await asyncio.sleep(0.05)
    cutoff = datetime.now(timezone.utc)
    await asyncio.sleep(0.05)
    fresh = await make_sessions(backend, 1)
    await backend.store.session(fresh[0]).update_metadata({"tenant": "a"})
    deleted = await backend.store.delete_sessions(metadata={"tenant": "a"}, updated_before=cutoff)
    assert deleted == 1
    assert await live_ids(backend) == {ids[1], fresh[0]}


async def test_delete_sessions_dry_run_counts_and_deletes_nothing(backend: Backend) -> None:
    ids = await make_sessions(backend, 3)
    for session_id in ids:
        await backend.store.session(session_id).update_metadata({"tenant": "a"})
    assert await backend.store.delete_sessions(metadata={"tenant": "a"}, dry_run=True) == 3
    assert await live_ids(backend) == set(ids)


async def test_delete_sessions_finds_matches_on_every_page(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(turnstore.store, "_DELETE_PAGE", 2)  # 7 sessions: 4 pages
    await make_sessions(backend, 7)
    later = datetime.now(timezone.utc) + timedelta(minutes=1)
    assert await backend.store.delete_sessions(updated_before=later) == 7
    assert await live_ids(backend) == set()


@pytest.mark.parametrize(
    "conditions",
    [{}, {"metadata": {}}, {"metadata": None, "updated_before": None}],
)
async def test_delete_sessions_without_a_condition_is_refused(
    backend: Backend, conditions: dict[str, Any]
) -> None:
    ids = await make_sessions(backend, 2)
    with pytest.raises(ConfigurationError, match="condition"):
        await backend.store.delete_sessions(**conditions)
    assert await live_ids(backend) == set(ids)


async def test_delete_sessions_refuses_a_naive_time(backend: Backend) -> None:
    with pytest.raises(ConfigurationError, match="timezone-aware"):
        await backend.store.delete_sessions(updated_before=datetime.now())


async def test_expired_sessions_are_neither_listed_nor_counted(backend: Backend) -> None:
    keep = await make_sessions(backend, 2)
    await make_sessions(backend, 3, ttl=0.3)
    await asyncio.sleep(0.6)
    listed = [i.session_id for i in (await backend.store.list_sessions()).sessions]
    assert listed == keep[::-1]
    assert await backend.store.count_sessions() == 2


async def test_purge_expired_removes_expired_sessions_and_counts_them(backend: Backend) -> None:
    keep = await make_sessions(backend, 2)
    await make_sessions(backend, 3, ttl=0.3)
    await asyncio.sleep(0.6)
    assert await backend.store.purge_expired() == 3
    assert await backend.store.purge_expired() == 0
    assert await backend.store.count_sessions() == 2
    listed = [i.session_id for i in (await backend.store.list_sessions()).sessions]
    assert listed == keep[::-1]


async def test_count_expired_counts_what_purge_would_remove_and_changes_nothing(
    backend: Backend,
) -> None:
    await make_sessions(backend, 2)
    await make_sessions(backend, 3, ttl=0.3)
    await asyncio.sleep(0.6)
    try:
        counted = await backend.store.count_expired()
    except NotImplementedError:
        pytest.skip("this backend keeps BaseStore.count_expired (purge --dry-run cannot count)")
    assert counted == 3
    assert await backend.store.count_expired() == 3
    assert await backend.store.purge_expired() == 3
    assert await backend.store.count_expired() == 0


async def test_an_expired_session_written_again_without_ttl_lives_on(backend: Backend) -> None:
    """The id of an expired session is reused before any purge ran: the new session has no
    deadline, so it is listed, counted and survives purges (none of the old deadline's
    bookkeeping may outlive the old session)."""
    (session_id,) = await make_sessions(backend, 1, ttl=0.3)
    await asyncio.sleep(0.6)
    again = backend.store.session(session_id)
    await again.add_items([user("again")])
    assert await backend.store.purge_expired() == 0
    assert await again.get_items() == [user("again")]
    info = await backend.store.get_info(session_id)
    assert info is not None and info.expires_at is None and info.item_count == 1
    assert [i.session_id for i in (await backend.store.list_sessions()).sessions] == [session_id]
    assert await backend.store.count_sessions() == 1


async def test_a_session_expiring_while_listed_drops_out_of_later_pages(
    backend: Backend,
) -> None:
    lasting = await make_sessions(backend, 3)
    short = await make_sessions(backend, 3, ttl=0.5)
    first = await backend.store.list_sessions(limit=2)
    assert [i.session_id for i in first.sessions] == short[::-1][:2]
    await asyncio.sleep(0.8)
    rest = await all_pages(backend.store, limit=2)
    assert [sid for page in rest for sid in page] == lasting[::-1]


@pytest.mark.parametrize("cursor", ["garbage", "eyJ4IjoxfQ", ""])
async def test_bad_cursor_is_a_configuration_error(backend: Backend, cursor: str) -> None:
    with pytest.raises(ConfigurationError):
        await backend.store.list_sessions(cursor=cursor)


@pytest.mark.parametrize("limit", [0, -1, 1.5, True])
async def test_bad_limit_is_a_configuration_error(backend: Backend, limit: Any) -> None:
    with pytest.raises(ConfigurationError):
        await backend.store.list_sessions(limit=limit)


async def test_ping_answers(backend: Backend) -> None:
    assert await backend.store.ping() is True


async def test_closing_a_store_session_leaves_the_store_open(backend: Backend) -> None:
    session = backend.store.session(unique_id())
    await session.add_items([user("a")])
    await session.close()
    assert await backend.store.ping() is True
    assert await backend.store.session(session.session_id).get_items() == [user("a")]


async def test_a_closed_store_refuses_every_call(backend: Backend) -> None:
    session = backend.store.session(unique_id())
    await backend.store.close()
    with pytest.raises(SessionClosedError):
        await backend.store.list_sessions()
    with pytest.raises(SessionClosedError):
        await backend.store.count_sessions()
    with pytest.raises(SessionClosedError):
        backend.store.session("x")
    with pytest.raises(SessionClosedError):
        await session.add_items([user("a")])
    await backend.store.close()  # idempotent
