"""TTL: a sliding deadline in the state table; expired sessions are gone for every caller."""

from __future__ import annotations

import asyncio

from tests.sqlite.sqlite_support import contents, raw_rows, user
from turnstore.sqlite import SQLiteSession, SQLiteStore


async def test_an_expired_session_is_invisible_to_every_read(db_file: str) -> None:
    async with SQLiteStore(db_file, ttl=0.05) as store:
        session = store.session("s")
        await session.add_items([user("hi")])
        await session.update_metadata({"user_id": "u1"})
        await asyncio.sleep(0.1)
        assert await session.get_items() == []
        assert await session.get_info() is None
        assert await store.get_info("s") is None
        assert (await store.list_sessions()).sessions == []
        assert (await store.list_sessions(metadata={"user_id": "u1"})).sessions == []
        assert await store.count_sessions() == 0
        assert await session.touch() is False
        assert await session.pop_item() is None


async def test_a_write_to_an_expired_session_starts_it_afresh(db_file: str) -> None:
    async with SQLiteSession("s", db_file, ttl=0.05) as session:
        await session.add_items([user("old")])
        await session.update_metadata({"k": "v"})
        await asyncio.sleep(0.1)
        await session.add_items([user("new")])
        assert contents(await session.get_items()) == ["new"]
        info = await session.get_info()
        assert info is not None and info.metadata == {} and info.item_count == 1


async def test_purge_expired_deletes_the_rows_and_counts_the_sessions(db_file: str) -> None:
    async with SQLiteStore(db_file) as store:
        for name in ("a", "b"):
            await store.session(name, ttl=0.05).add_items([user(name)])
        await store.session("kept").add_items([user("kept")])
        await asyncio.sleep(0.1)
        assert await store.purge_expired() == 2
        assert await store.purge_expired() == 0
    sessions = raw_rows(db_file, "SELECT session_id FROM agent_sessions")
    messages = raw_rows(db_file, "SELECT DISTINCT session_id FROM agent_messages")
    assert sessions == messages == [("kept",)]


async def test_reads_slide_the_deadline(db_file: str) -> None:
    async with SQLiteSession("s", db_file, ttl=0.5) as session:
        await session.add_items([user("hi")])
        await asyncio.sleep(0.3)
        assert contents(await session.get_items()) == ["hi"]
        await asyncio.sleep(0.3)  # 0.6 s after the write, 0.3 s after the read
        assert contents(await session.get_items()) == ["hi"]


async def test_reads_leave_the_deadline_alone_when_told_to(db_file: str) -> None:
    async with SQLiteSession("s", db_file, ttl=0.5, refresh_ttl_on_read=False) as session:
        await session.add_items([user("hi")])
        await asyncio.sleep(0.3)
        assert contents(await session.get_items()) == ["hi"]
        await asyncio.sleep(0.3)
        assert await session.get_items() == []


async def test_expires_at_is_the_last_write_plus_the_ttl(db_file: str) -> None:
    async with SQLiteSession("s", db_file, ttl=60) as session:
        await session.add_items([user("hi")])
        info = await session.get_info()
        assert info is not None and info.expires_at is not None
        assert (info.expires_at - info.updated_at).total_seconds() == 60


async def test_a_repeated_idempotency_key_is_a_no_op(db_file: str) -> None:
    async with SQLiteSession("s", db_file) as session:
        await session.add_items([user("once")], idempotency_key="turn-1")
        await session.add_items([user("once")], idempotency_key="turn-1")
        await session.add_items([user("twice")], idempotency_key="turn-2")
        assert contents(await session.get_items()) == ["once", "twice"]


async def test_an_expired_batch_token_no_longer_blocks_its_batch(db_file: str) -> None:
    async with SQLiteSession("s", db_file) as session:
        batch = [b'{"role":"user","content":"x"}']
        assert await session.storage_append(batch, "k:retry", 50) is True
        assert await session.storage_append(batch, "k:retry", 50) is False
        await asyncio.sleep(0.1)
        assert await session.storage_append(batch, "k:retry", 50) is True
        assert len(await session.get_items()) == 2
