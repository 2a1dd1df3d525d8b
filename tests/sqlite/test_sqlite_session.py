"""`SQLiteSession` behaviour specific to SQLite: threads, event loops, closing, storage."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import warnings
from pathlib import Path

import pytest
from agents import SQLiteSession as SDKSession

from tests.sqlite.sqlite_support import assistant, contents, raw_rows, user, worker_threads
from turnstore import CorruptItemError, LockTimeoutError, SessionClosedError
from turnstore.sqlite import SQLiteSession, SQLiteStore


async def test_reading_2000_items_does_not_block_the_event_loop(db_file: str) -> None:
    async with SQLiteSession("big", db_file) as session:
        await session.add_items([user(f"{n:04d}" + "x" * 1000) for n in range(2000)])
        ticks = 0
        running = True

        async def ticker() -> None:
            nonlocal ticks
            while running:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        before = ticks
        items = await session.get_items()
        during = ticks - before
        running = False
        await task
        assert len(items) == 2000
        assert during >= 10, f"the ticker ran {during} times while 2,000 items were read"


async def test_a_session_serves_a_second_event_loop_in_another_thread(db_file: str) -> None:
    async with SQLiteSession("s", db_file) as session:
        await session.add_items([user("from the main loop")])

        def in_another_thread() -> list[str]:
            async def use() -> list[str]:
                await session.add_items([assistant("from the thread's loop")])
                return contents(await session.get_items())

            return asyncio.run(use())

        seen = await asyncio.to_thread(in_another_thread)
        expected = ["from the main loop", "from the thread's loop"]
        assert seen == expected
        assert contents(await session.get_items()) == expected


def test_close_works_without_await(db_file: str) -> None:
    session = SQLiteSession("s", db_file)
    asyncio.run(session.add_items([user("hi")]))
    assert len(worker_threads(db_file)) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an un-awaited coroutine would warn
        session.close()
        gc.collect()
    assert worker_threads(db_file) == []
    with pytest.raises(SessionClosedError, match="SQLiteSession is closed"):
        asyncio.run(session.get_items())


async def test_every_call_after_close_raises(db_file: str) -> None:
    session = SQLiteSession("s", db_file)
    await session.close()
    await session.close()  # closing twice is fine
    for call in (
        session.get_items(),
        session.add_items([]),
        session.pop_item(),
        session.clear_session(),
        session.get_info(),
        session.touch(),
    ):
        with pytest.raises(SessionClosedError, match="SQLiteSession is closed"):
            await call


async def test_sessions_on_one_file_share_one_connection_thread(db_file: str) -> None:
    first, second = SQLiteSession("a", db_file), SQLiteSession("b", db_file)
    await first.add_items([user("a")])
    await second.add_items([user("b")])
    assert len(worker_threads(db_file)) == 1
    first.close()
    assert contents(await second.get_items()) == ["b"]  # still served
    second.close()
    assert worker_threads(db_file) == []


async def test_in_memory_sessions_each_have_their_own_database() -> None:
    async with SQLiteSession("s") as first, SQLiteSession("s") as second:
        await first.add_items([user("hi")])
        assert await second.get_items() == []


async def test_a_fork_of_an_in_memory_session_outlives_its_source() -> None:
    source = SQLiteSession("s")
    await source.add_items([user("q1"), assistant("a1"), user("q2"), assistant("a2")])
    fork = await source.fork("copy", upto_turn=1)
    await source.close()
    assert contents(await fork.get_items()) == ["q1", "a1"]
    await fork.close()


async def test_max_items_trims_the_oldest_rows_on_append(db_file: str) -> None:
    async with SQLiteSession("s", db_file, max_items=3) as session:
        await session.add_items([user(str(n)) for n in range(5)])
        await session.add_items([user("5")])
        assert contents(await session.get_items()) == ["3", "4", "5"]
        info = await session.get_info()
        assert info is not None and info.item_count == 3
    assert len(raw_rows(db_file, "SELECT id FROM agent_messages")) == 3


def _store_corrupt_row(db_file: str, session_id: str) -> None:
    conn = sqlite3.connect(db_file)
    with conn:
        conn.execute(
            "INSERT INTO agent_messages (session_id, message_data) VALUES (?, 'not json')",
            (session_id,),
        )
    conn.close()


async def test_pop_skips_a_corrupt_newest_row_and_leaves_it_stored(db_file: str) -> None:
    async with SQLiteSession("s", db_file) as session:
        await session.add_items([user("kept"), user("popped")])
        _store_corrupt_row(db_file, "s")
        assert (await session.pop_item()) == user("popped")
        assert contents(await session.get_items()) == ["kept"]
    stored = [data for (data,) in raw_rows(db_file, "SELECT message_data FROM agent_messages")]
    assert "not json" in stored


async def test_pop_raises_at_a_corrupt_newest_row_without_removing_it(db_file: str) -> None:
    async with SQLiteSession("s", db_file, on_corrupt="raise") as session:
        await session.add_items([user("first")])
        _store_corrupt_row(db_file, "s")
        with pytest.raises(CorruptItemError) as raised:
            await session.pop_item()
        assert raised.value.position == 1
        info = await session.get_info()
        assert info is not None and info.item_count == 2


async def test_concurrent_pops_in_one_process_never_return_the_same_item(db_file: str) -> None:
    async with SQLiteSession("s", db_file) as one, SQLiteSession("s", db_file) as other:
        await one.add_items([user(str(n)) for n in range(20)])
        popped = await asyncio.gather(*(s.pop_item() for s in (one, other) * 12))
        got = [item["content"] for item in popped if item is not None]
        assert sorted(got, key=int) == [str(n) for n in range(20)]


async def test_replace_items_swaps_the_history_in_one_step(db_file: str) -> None:
    async with SQLiteSession("s", db_file) as session:
        await session.add_items([user("a"), assistant("b")])
        await session.replace_items([user("summary")])
        assert contents(await session.get_items()) == ["summary"]
        info = await session.get_info()
        assert info is not None and info.item_count == 1


async def test_a_session_reopens_from_its_file(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"  # a PathLike, as the SDK accepts
    async with SQLiteSession("s", path) as session:
        await session.add_items([user("persisted")])
    async with SQLiteSession("s", path) as session:
        assert contents(await session.get_items()) == ["persisted"]


def test_an_unclosed_session_releases_its_thread_when_collected(db_file: str) -> None:
    session = SQLiteSession("s", db_file)
    asyncio.run(session.add_items([user("hi")]))
    del session
    gc.collect()
    assert worker_threads(db_file) == []


async def test_a_lock_stays_held_when_the_sdk_clears_the_session(db_file: str) -> None:
    async with SQLiteSession("s", db_file) as holder, SQLiteStore(db_file) as store:
        rival = store.session("s")  # another connection to the file
        async with holder.lock(timeout=1):
            await holder.add_items([user("hi")])
            sdk = SDKSession("s", db_file)
            try:
                await sdk.clear_session()
            finally:
                sdk.close()
            with pytest.raises(LockTimeoutError):
                async with rival.lock(timeout=0.1):
                    pytest.fail("the lock was dropped with the session's rows")
        async with rival.lock(timeout=1):
            pass
