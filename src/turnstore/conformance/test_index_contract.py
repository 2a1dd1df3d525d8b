"""Indexed metadata, bulk deletion, self-cleaning and reindex (SPEC section 2, "Stores").

Each test indexes a metadata key of its own (`unique_id`), so a key that a backend keeps
indexed in its storage from an earlier test never makes this one pass or fail.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

import pytest

from turnstore import SessionStore
from turnstore.conformance.harness import Backend, unique_id
from turnstore.conformance.items import turn, user


def indexed(backend: Backend) -> tuple[SessionStore, str]:
    """A store of the backend indexing a fresh key, and the key."""
    key = unique_id("user")
    return backend.store_with(index_metadata=(key,)), key


async def written(store: SessionStore, values: list[str], key: str, **options: Any) -> list[str]:
    """One session per value (metadata key=value), in order, a little apart in time."""
    ids = [unique_id(f"n{n:03d}") for n in range(len(values))]
    for session_id, value in zip(ids, values, strict=True):
        await store.session(session_id, **options).update_metadata({key: value})
        await asyncio.sleep(0.002)  # distinct update times
    return ids


async def listed(
    store: SessionStore, metadata: dict[str, str] | None = None, limit: int = 100
) -> list[str]:
    """Every page of the listing, joined; fails if paging does not end."""
    found: list[str] = []
    cursor: str | None = None
    for _ in range(100):
        page = await store.list_sessions(limit=limit, cursor=cursor, metadata=metadata or None)
        found += [info.session_id for info in page.sessions]
        cursor = page.next_cursor
        if cursor is None:
            return found
    raise AssertionError("paging does not end")


async def test_an_indexed_listing_holds_the_value_newest_first(backend: Backend) -> None:
    store, key = indexed(backend)
    ids = await written(store, ["u1", "u2", "u1", "u1", "u2", "u1"], key)
    assert await listed(store, {key: "u1"}) == [ids[5], ids[3], ids[2], ids[0]]


async def test_indexed_pages_follow_the_cursor_without_skips_or_repeats(
    backend: Backend,
) -> None:
    store, key = indexed(backend)
    ids = await written(store, ["u1", "u2"] * 12, key)
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = await store.list_sessions(limit=5, cursor=cursor, metadata={key: "u1"})
        pages.append([info.session_id for info in page.sessions])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [session_id for page in pages for session_id in page] == ids[::2][::-1]


async def test_an_indexed_pair_and_an_unindexed_one_must_both_match(backend: Backend) -> None:
    store, key = indexed(backend)
    ids = await written(store, ["u1", "u1", "u2"], key)
    await store.session(ids[0]).update_metadata({"colour": "red"})
    await store.session(ids[2]).update_metadata({"colour": "red"})
    assert await listed(store, {key: "u1", "colour": "red"}) == [ids[0]]


async def test_an_indexed_listing_of_a_value_nobody_has_is_empty(backend: Backend) -> None:
    store, key = indexed(backend)
    await written(store, ["u1", "u2"], key)
    page = await store.list_sessions(metadata={key: "nobody"})
    assert (page.sessions, page.next_cursor) == ([], None)


async def test_a_write_moves_the_session_to_the_front_of_its_value(backend: Backend) -> None:
    store, key = indexed(backend)
    ids = await written(store, ["u1", "u1", "u1"], key)
    await store.session(ids[0]).add_items([user("again")])
    assert await listed(store, {key: "u1"}) == [ids[0], ids[2], ids[1]]


async def test_changing_an_indexed_value_moves_the_session_to_the_new_value(
    backend: Backend,
) -> None:
    store, key = indexed(backend)
    ids = await written(store, ["u1", "u1"], key)
    await store.session(ids[0]).update_metadata({key: "u2"})
    assert await listed(store, {key: "u1"}) == [ids[1]]
    assert await listed(store, {key: "u2"}) == [ids[0]]


async def test_removing_an_indexed_value_takes_the_session_out_of_it(backend: Backend) -> None:
    store, key = indexed(backend)
    ids = await written(store, ["u1", "u1"], key)
    await store.session(ids[1]).update_metadata({key: None})
    assert await listed(store, {key: "u1"}) == [ids[0]]
    assert ids[1] in await listed(store)  # the session itself stays


async def test_replace_items_keeps_the_session_listed_and_moves_it_first(
    backend: Backend,
) -> None:
    store, key = indexed(backend)
    ids = await written(store, ["u1", "u1"], key)
    await store.session(ids[0]).replace_items(turn(0))
    assert await listed(store, {key: "u1"}) == [ids[0], ids[1]]


async def test_clear_session_takes_the_session_out_of_its_value(backend: Backend) -> None:
    store, key = indexed(backend)
    ids = await written(store, ["u1", "u1"], key)
    await store.session(ids[1]).clear_session()
    assert await listed(store, {key: "u1"}) == [ids[0]]


async def test_delete_session_takes_the_session_out_of_its_value(backend: Backend) -> None:
    store, key = indexed(backend)
    ids = await written(store, ["u1", "u1"], key)
    assert await store.delete_session(ids[0])
    assert await listed(store, {key: "u1"}) == [ids[1]]


async def test_an_expired_session_leaves_its_value(backend: Backend) -> None:
    store, key = indexed(backend)
    short = await written(store, ["u1"], key, ttl=0.2)
    kept = await written(store, ["u1"], key)
    await asyncio.sleep(0.3)
    assert await listed(store, {key: "u1"}) == kept
    assert short[0] not in await listed(store)


async def test_a_fork_is_listed_under_the_value_it_copied(backend: Backend) -> None:
    store, key = indexed(backend)
    ids = await written(store, ["u1"], key)
    source = store.session(ids[0])
    await source.add_items(turn(0))
    await asyncio.sleep(0.002)  # the fork is written later than its source
    fork = await source.fork(unique_id("fork"))
    assert await listed(store, {key: "u1"}) == [fork.session_id, ids[0]]


async def test_delete_sessions_through_the_index_dry_run_counts_only(backend: Backend) -> None:
    store, key = indexed(backend)
    ids = await written(store, ["u1", "u2", "u1", "u1"], key)
    assert await store.delete_sessions(metadata={key: "u1"}, dry_run=True) == 3
    assert await listed(store, {key: "u1"}) == [ids[3], ids[2], ids[0]]


async def test_delete_sessions_through_the_index_deletes_exactly_the_value(
    backend: Backend,
) -> None:
    store, key = indexed(backend)
    ids = await written(store, ["u1", "u2", "u1", "u1"], key)
    assert await store.delete_sessions(metadata={key: "u1"}) == 3
    assert await listed(store, {key: "u1"}) == []
    assert await listed(store) == [ids[1]]
    assert await store.count_sessions() == 1


async def test_delete_sessions_by_index_and_time_keeps_the_newer_ones(backend: Backend) -> None:
    store, key = indexed(backend)
    old = await written(store, ["u1", "u2", "u1"], key)
    await asyncio.sleep(0.02)
    cutoff = datetime.now(timezone.utc)
    await asyncio.sleep(0.02)
    new = await written(store, ["u1"], key)
    assert await store.delete_sessions(metadata={key: "u1"}, updated_before=cutoff) == 2
    assert await listed(store) == [new[0], old[1]]


async def test_expired_sessions_leave_counts_and_listings_while_others_write(
    backend: Backend,
) -> None:
    store, key = indexed(backend)
    await written(store, ["short"] * 200, key, ttl=0.5)
    kept = await written(store, ["long"] * 5, key)
    await asyncio.sleep(0.6)
    for n in range(100):  # writes that may clean up after the expired sessions
        await store.session(kept[n % 5]).add_items([user(f"m{n}")])
    order = [kept[(99 - n) % 5] for n in range(5)]  # the last five writes, newest first
    assert await store.count_sessions() == 5
    assert await listed(store, limit=3) == order
    assert await listed(store, {key: "long"}, limit=3) == order
    assert await listed(store, {key: "short"}) == []


async def test_reindex_makes_earlier_sessions_listable_by_a_new_key(backend: Backend) -> None:
    if not backend.reopens:
        pytest.skip(f"{backend.name}: another store cannot reach the same storage")
    key = unique_id("user")
    ids = await written(backend.store, ["u1", "u2", "u1", "u1", "u2"], key)
    store = backend.store_with(index_metadata=(key,))
    assert await store.reindex() == 5
    assert await listed(store, {key: "u1"}, limit=2) == [ids[3], ids[2], ids[0]]
    assert await listed(store, {key: "u2"}) == [ids[4], ids[1]]


async def test_reindex_of_a_complete_index_indexes_nothing(backend: Backend) -> None:
    store, key = indexed(backend)
    ids = await written(store, ["u1", "u1"], key)
    assert await store.reindex() == 0
    assert await listed(store, {key: "u1"}) == ids[::-1]


async def test_reindex_continues_after_an_interruption(backend: Backend) -> None:
    if not backend.reopens:
        pytest.skip(f"{backend.name}: another store cannot reach the same storage")
    key = unique_id("user")
    ids = await written(backend.store, ["u1"] * 30, key)
    store = backend.store_with(index_metadata=(key,))
    reported: list[int] = []

    def interrupt(done: int) -> None:
        reported.append(done)
        raise KeyboardInterrupt  # the operator's Ctrl-C after the first step

    with pytest.raises(KeyboardInterrupt):
        await store.reindex(progress=interrupt)
    rest = await store.reindex()
    assert reported[-1] + rest == 30
    assert await listed(store, {key: "u1"}, limit=7) == ids[::-1]
