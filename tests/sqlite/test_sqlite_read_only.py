"""Read-only stores leave other people's files byte-identical, and still read them."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from agents import SQLiteSession as SDKSession

from tests.sqlite.sqlite_support import assistant, user
from turnstore import BackendError
from turnstore.sqlite import SQLiteSession, SQLiteStore

HISTORY: list[Any] = [user("hello"), assistant("hi there"), user("bye"), assistant("bye!")]


def fingerprint(folder: Path) -> dict[str, str]:
    """Every database file of the folder and the SHA-256 of its bytes.

    A reader of a WAL-mode file (the SDK's files are) makes SQLite create the `-shm` index
    and an empty `-wal` beside it, as any reader does, the SDK's own included: those hold
    no data and are checked to be just that.
    """
    found: dict[str, str] = {}
    for path in sorted(folder.iterdir()):
        if path.name.endswith("-shm"):
            continue
        if path.name.endswith("-wal"):
            assert path.stat().st_size == 0, f"{path.name} holds data"
            continue
        found[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


async def write_with_the_sdk(path: str, **tables: str) -> None:
    for session_id, items in (("first", HISTORY[:2]), ("second", HISTORY)):
        sdk = SDKSession(session_id, path, **tables)
        await sdk.add_items(items)
        sdk.close()


async def test_a_read_only_store_lists_an_sdk_file_from_the_sdk_tables(tmp_path: Path) -> None:
    path = str(tmp_path / "sdk.db")
    await write_with_the_sdk(path)
    before = fingerprint(tmp_path)
    async with SQLiteStore(path, read_only=True) as store:
        page = await store.list_sessions()
        counts = {info.session_id: info.item_count for info in page.sessions}
        info = await store.get_info("second")
        items = await store.session("second").get_items()
        assert await store.count_sessions() == 2
    assert counts == {"first": 2, "second": 4}
    assert info is not None and info.metadata == {} and info.expires_at is None
    assert info.created_at.year >= 2024
    assert items == HISTORY
    assert fingerprint(tmp_path) == before


async def test_reading_an_sdk_file_read_only_adds_no_tables_or_triggers(tmp_path: Path) -> None:
    path = str(tmp_path / "sdk.db")
    await write_with_the_sdk(path)
    async with SQLiteStore(path, read_only=True) as store:
        await store.list_sessions()
        await store.session("first").get_items()
    with sqlite3.connect(path) as conn:
        objects = sorted(name for (name,) in conn.execute("SELECT name FROM sqlite_master"))
    assert not any("state" in name or "_on_" in name for name in objects), objects


async def test_a_file_with_custom_table_names_is_read_with_them_and_unchanged(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "custom.db")
    await write_with_the_sdk(path, sessions_table="conv", messages_table="conv_items")
    before = fingerprint(tmp_path)
    async with SQLiteStore(path, read_only=True) as store:
        with pytest.raises(BackendError, match=r"custom\.db has no table 'agent_sessions'"):
            await store.list_sessions()
    named = SQLiteStore(path, read_only=True, sessions_table="conv", messages_table="conv_items")
    async with named as store:
        page = await store.list_sessions()
    assert sorted(info.session_id for info in page.sessions) == ["first", "second"]
    assert fingerprint(tmp_path) == before


async def test_a_read_only_store_shows_our_metadata_and_changes_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "ours.db")
    async with SQLiteStore(path) as store:
        session = store.session("s1", ttl=3600)
        await session.add_items(HISTORY)
        await session.update_metadata({"user_id": "u1"})
    before = fingerprint(tmp_path)
    async with SQLiteStore(path, read_only=True, ttl=3600) as store:
        info = await store.get_info("s1")
        assert await store.session("s1").get_items() == HISTORY  # would slide the TTL
        again = await store.get_info("s1")
    assert info is not None and info.metadata == {"user_id": "u1"}
    assert again is not None and again.expires_at == info.expires_at
    assert fingerprint(tmp_path) == before


async def test_a_write_through_a_read_only_store_is_a_backend_error(tmp_path: Path) -> None:
    path = str(tmp_path / "sdk.db")
    await write_with_the_sdk(path)
    before = fingerprint(tmp_path)
    async with SQLiteStore(path, read_only=True) as store:
        with pytest.raises(BackendError, match="readonly") as caught:
            await store.session("first").add_items([user("more")])
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    assert fingerprint(tmp_path) == before


async def test_a_read_only_store_of_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    async with SQLiteStore(str(path), read_only=True) as store:
        with pytest.raises(BackendError, match=r"absent\.db: it does not exist"):
            await store.list_sessions()
    assert fingerprint(tmp_path) == {}


# -- construction and failed writes -------------------------------------------------------


def table_names(path: str) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}


def test_constructing_a_session_creates_the_sdk_tables(db_file: str) -> None:
    session = SQLiteSession("s1", db_file)
    try:
        assert {"agent_sessions", "agent_messages"} <= table_names(db_file)
    finally:
        session.close()


async def test_after_a_refused_first_write_the_sdk_reads_the_file(db_file: str) -> None:
    session = SQLiteSession("s1", db_file)
    with pytest.raises(TypeError):
        await session.add_items([{"role": "user", "content": object()}])
    session.close()
    sdk = SDKSession("s1", db_file)
    try:
        assert await sdk.get_items() == []
    finally:
        sdk.close()


async def test_a_failed_write_leaves_no_transaction_open(db_file: str) -> None:
    session = SQLiteSession("s1", db_file)
    with sqlite3.connect(db_file) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON agent_messages "
            "WHEN NEW.message_data LIKE '%refuse me%' "
            "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
        )
    try:
        await session.add_items([user("kept")])
        with pytest.raises(BackendError, match="refused by a trigger"):
            await session.add_items([user("also lost"), user("refuse me")])
        # Another process can take the write lock at once: nothing was left open.
        other = sqlite3.connect(db_file, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert await session.get_items() == [user("kept")]
        await session.add_items([user("after")])
        assert await session.get_items() == [user("kept"), user("after")]
    finally:
        session.close()


def test_a_missing_directory_is_named_when_the_session_is_constructed(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "dir" / "x.db"
    with pytest.raises(BackendError, match=f"directory {tmp_path / 'missing' / 'dir'} does not"):
        SQLiteSession("s1", str(path))


async def test_a_store_on_a_missing_directory_names_it_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "x.db"
    async with SQLiteStore(str(path)) as store:
        with pytest.raises(BackendError, match=str(path)):
            await store.count_sessions()


async def test_a_read_only_in_memory_store_is_simply_empty() -> None:
    async with SQLiteStore(":memory:", read_only=True) as store:
        assert (await store.list_sessions()).sessions == []
        assert await store.count_sessions() == 0
