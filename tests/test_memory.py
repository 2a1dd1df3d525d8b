"""`memory://` beyond the shared suite: its indexed listing, named stores and URL options."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from turnstore import (
    ConfigurationError,
    MemorySession,
    MemoryStore,
    SessionClosedError,
    SessionStore,
    open_store,
)
from turnstore.conformance.harness import unique_id
from turnstore.conformance.items import turn, user


async def ids_matching(store: SessionStore, limit: int, **filters: str) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page = await store.list_sessions(limit=limit, cursor=cursor, metadata=filters)
        ids += [info.session_id for info in page.sessions]
        cursor = page.next_cursor
        if cursor is None:
            return ids


async def test_an_indexed_filter_pages_through_exactly_its_sessions() -> None:
    store = MemoryStore(index_metadata=["user_id"])
    written: dict[str, list[str]] = {"u1": [], "u2": []}
    for n in range(25):
        owner = "u1" if n % 3 else "u2"
        session_id = f"s{n:02d}"
        await store.session(session_id).update_metadata({"user_id": owner, "n": str(n)})
        written[owner].append(session_id)
        await asyncio.sleep(0.001)
    assert await ids_matching(store, 4, user_id="u1") == written["u1"][::-1]
    assert await ids_matching(store, 4, user_id="u2") == written["u2"][::-1]
    assert await ids_matching(store, 4, user_id="u2", n="3") == ["s03"]


async def test_the_index_follows_changed_removed_and_cleared_metadata() -> None:
    store = MemoryStore(index_metadata=("tenant",))
    a, b, c = store.session("a"), store.session("b"), store.session("c")
    for session in (a, b, c):
        await session.update_metadata({"tenant": "t1"})
    await a.update_metadata({"tenant": "t2"})
    await b.update_metadata({"tenant": None})
    await c.clear_session()
    assert await ids_matching(store, 10, tenant="t1") == []
    assert await ids_matching(store, 10, tenant="t2") == ["a"]


async def test_an_expired_session_leaves_the_index() -> None:
    store = MemoryStore(index_metadata=["tenant"])
    await store.session("short", ttl=0.05).update_metadata({"tenant": "t"})
    await store.session("long").update_metadata({"tenant": "t"})
    await asyncio.sleep(0.1)
    assert await ids_matching(store, 10, tenant="t") == ["long"]
    assert await store.count_sessions() == 1
    assert await store.purge_expired() == 1


@pytest.mark.parametrize("bad", [[""], [1], b"user_id", None])
def test_bad_index_metadata_is_a_configuration_error(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="index_metadata"):
        MemoryStore(index_metadata=bad)


async def test_url_options_and_index_metadata_reach_the_store() -> None:
    store = open_store("memory://?ttl=60&max_turns=2&index_metadata=user_id,tenant")
    assert isinstance(store, MemoryStore)
    assert store.index_metadata == ("user_id", "tenant")
    session = store.session("s")
    assert (session.ttl, session.max_turns) == (60, 2)
    await session.add_items(turn(0) + turn(1) + turn(2))
    assert await session.get_items() == turn(1) + turn(2)


@pytest.mark.parametrize("url", ["memory:///path", "memory://x#frag", "memory://?colour=blue"])
def test_a_bad_memory_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError):
        open_store(url)


async def test_memory_urls_without_a_name_are_separate_stores() -> None:
    first, second = open_store("memory://"), open_store("memory://")
    await first.session("s").add_items([user("only in the first")])
    assert await second.get_info("s") is None


async def test_stores_on_one_name_share_their_sessions() -> None:
    name = unique_id("shared")
    first, second = open_store(f"memory://{name}"), MemoryStore(name=name)
    await first.session("s").add_items([user("hi")])
    assert await second.session("s").get_items() == [user("hi")]
    await first.close()
    assert await second.session("s").get_items() == [user("hi")]  # the other stays open


async def test_stores_on_one_name_may_index_different_keys() -> None:
    name = unique_id("indexed")
    first = MemoryStore(name=name, index_metadata=["a"])
    second = MemoryStore(name=name, index_metadata=["b"])
    await first.session("s").update_metadata({"a": "1", "b": "2"})
    assert await ids_matching(second, 10, a="1") == ["s"]
    assert await ids_matching(first, 10, b="2") == ["s"]
    assert (first.index_metadata, second.index_metadata) == (("a",), ("b",))


async def test_a_key_indexed_after_sessions_existed_is_found_after_reindex() -> None:
    name = unique_id("later")
    plain = MemoryStore(name=name)
    for n in range(3):
        await plain.session(f"s{n}").update_metadata({"user_id": "u1"})
    indexed = MemoryStore(name=name, index_metadata=["user_id"])
    assert await indexed.reindex() == 3
    assert await ids_matching(indexed, 10, user_id="u1") == ["s2", "s1", "s0"]
    assert await indexed.reindex() == 0


async def test_writes_forget_expired_sessions_without_a_purge() -> None:
    store = MemoryStore(index_metadata=["tenant"])
    for n in range(40):
        await store.session(f"short{n}", ttl=0.05).update_metadata({"tenant": "t"})
    await asyncio.sleep(0.1)
    long = store.session("long")
    for n in range(25):  # SWEEP_PER_WRITE (2) each: enough for all 40
        await long.add_items([user(f"m{n}")])
    # purge_expired says how many expired sessions it removed: the writes left it none.
    assert await store.purge_expired() == 0
    assert await store.count_sessions() == 1


async def test_a_standalone_session_has_its_own_store_and_closes() -> None:
    session = MemorySession("s", max_items=2)
    await session.add_items([user("a"), user("b"), user("c")])
    assert await session.get_items() == [user("b"), user("c")]
    assert await MemorySession("s").get_items() == []
    fork = await session.fork("copy")
    await session.close()
    with pytest.raises(SessionClosedError, match="MemorySession is closed"):
        await session.get_items()
    assert await fork.get_items() == [user("b"), user("c")]  # a fork outlives its source


def test_sessions_serve_other_threads_event_loops() -> None:
    store = MemoryStore()
    session = store.session("s")

    def writer(n: int) -> None:
        asyncio.run(session.add_items([user(f"thread {n}")]))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    items = asyncio.run(session.get_items())
    assert sorted(item["content"] for item in items) == [f"thread {n}" for n in range(8)]
