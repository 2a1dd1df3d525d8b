"""`SQLiteStore`: one connection for many sessions; listing, paging, counting, deleting."""

from __future__ import annotations

import asyncio

import pytest

from tests.sqlite.sqlite_support import contents, user, worker_threads
from turnstore import ConfigurationError, SessionClosedError, open_store
from turnstore.sqlite import SQLiteStore


async def test_sessions_are_listed_most_recently_updated_first(db_file: str) -> None:
    async with SQLiteStore(db_file) as store:
        for name in ("a", "b", "c", "a"):
            await store.session(name).add_items([user(name)])
            await asyncio.sleep(0.002)  # update times have millisecond resolution
        page = await store.list_sessions()
        assert [info.session_id for info in page.sessions] == ["a", "c", "b"]
        assert [info.item_count for info in page.sessions] == [2, 1, 1]
        assert page.next_cursor is None


async def test_paging_lists_every_session_once_even_when_new_ones_arrive(db_file: str) -> None:
    async with SQLiteStore(db_file) as store:
        for n in range(7):
            await store.session(f"s{n}").add_items([user("hi")])
            await asyncio.sleep(0.002)
        seen: list[str] = []
        page = await store.list_sessions(limit=3)
        while True:
            seen += [info.session_id for info in page.sessions]
            # A session created mid-listing sorts before the cursor: it must not shift pages.
            await store.session(f"new{len(seen)}").add_items([user("hi")])
            if page.next_cursor is None:
                break
            page = await store.list_sessions(limit=3, cursor=page.next_cursor)
        assert seen == [f"s{n}" for n in reversed(range(7))]


async def test_the_last_full_page_has_no_next_cursor(db_file: str) -> None:
    async with SQLiteStore(db_file) as store:
        for n in range(4):
            await store.session(f"s{n}").add_items([user("hi")])
        first = await store.list_sessions(limit=2)
        assert first.next_cursor is not None
        second = await store.list_sessions(limit=2, cursor=first.next_cursor)
        assert len(second.sessions) == 2 and second.next_cursor is None


async def test_the_metadata_filter_keeps_sessions_having_every_pair(db_file: str) -> None:
    async with SQLiteStore(db_file) as store:
        await store.session("both").update_metadata({"user_id": "u1", "team": "x"})
        await store.session("user_only").update_metadata({"user_id": "u1", "team": "y"})
        await store.session("other").update_metadata({"user_id": "u2", "team": "x"})
        page = await store.list_sessions(metadata={"user_id": "u1", "team": "x"})
        assert [info.session_id for info in page.sessions] == ["both"]
        assert page.sessions[0].metadata == {"user_id": "u1", "team": "x"}
        page = await store.list_sessions(metadata={"user_id": "u1"})
        assert {info.session_id for info in page.sessions} == {"both", "user_only"}


async def test_count_sessions_counts_live_sessions(db_file: str) -> None:
    async with SQLiteStore(db_file) as store:
        assert await store.count_sessions() == 0
        await store.session("a").add_items([user("hi")])
        await store.session("b").update_metadata({"k": "v"})
        await store.session("c").update_metadata({"k": None})  # creates nothing
        assert await store.count_sessions() == 2


async def test_delete_session_says_whether_it_existed(db_file: str) -> None:
    async with SQLiteStore(db_file) as store:
        session = store.session("a")
        await session.add_items([user("hi")])
        assert await store.delete_session("a") is True
        assert await store.delete_session("a") is False
        assert await session.get_items() == []
        assert await store.get_info("a") is None


async def test_session_overrides_apply_to_that_session_only(db_file: str) -> None:
    async with SQLiteStore(db_file, max_items=2) as store:
        capped, wider = store.session("capped"), store.session("wider", max_items=3)
        for session in (capped, wider):
            await session.add_items([user(str(n)) for n in range(5)])
        assert contents(await capped.get_items()) == ["3", "4"]
        assert contents(await wider.get_items()) == ["2", "3", "4"]


def test_an_unknown_session_override_is_refused(db_file: str) -> None:
    store = SQLiteStore(db_file)
    with pytest.raises(ConfigurationError, match="colour"):
        store.session("a", colour="blue")


def test_an_unknown_store_keyword_is_refused_as_by_every_constructor(db_file: str) -> None:
    # The constructors list their keywords (a type checker flags the mistake) and name an
    # unknown one in a ConfigurationError, as open_store does.
    with pytest.raises(ConfigurationError, match="unknown option 'colour' in SQLiteStore"):
        SQLiteStore(db_file, colour="blue")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="unknown option 'colour' in open_store"):
        open_store(f"sqlite:///{db_file}", colour="blue")


async def test_closing_a_store_session_leaves_the_store_open(db_file: str) -> None:
    async with SQLiteStore(db_file) as store:
        session = store.session("a")
        await session.add_items([user("hi")])
        await session.close()
        assert contents(await store.session("a").get_items()) == ["hi"]
        assert await store.ping() is True


async def test_closing_the_store_stops_its_sessions_and_its_thread(db_file: str) -> None:
    store = SQLiteStore(db_file)
    session = store.session("a")
    await session.add_items([user("hi")])
    await store.close()
    with pytest.raises(SessionClosedError):
        await session.get_items()
    with pytest.raises(SessionClosedError, match="SQLiteStore is closed"):
        await store.count_sessions()
    assert worker_threads(db_file) == []


async def test_an_in_memory_store_is_one_database_for_all_its_sessions() -> None:
    async with SQLiteStore(":memory:") as store:
        await store.session("a").add_items([user("from a")])
        await store.session("b").add_items([user("from b")])
        assert contents(await store.session("a").get_items()) == ["from a"]
        assert await store.count_sessions() == 2


async def test_a_store_hands_out_sessions_without_touching_the_file(db_file: str) -> None:
    async with SQLiteStore(db_file) as store:
        store.session("a")
        assert worker_threads(db_file) == []
        assert await store.ping() is True
        assert len(worker_threads(db_file)) == 1
