"""The SQLite metadata index, session counter and self-cleaning writes, seen in the file."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from agents import SQLiteSession as SDKSession

from tests.sqlite.sqlite_support import raw_rows, user
from tests.sqlite.test_sqlite_read_only import fingerprint
from turnstore import BackendError, ConfigurationError, open_store
from turnstore.sqlite import SQLiteSession, SQLiteStore

INDEX_ROWS = "SELECT key, value, updated_ms, session_id FROM agent_sessions_index ORDER BY 4, 1"
# What the index must hold: every live-or-not stored pair of an indexed key, at its update time.
EXPECTED_ROWS = (
    "SELECT m.key, m.value, s.updated_ms, m.session_id FROM agent_sessions_metadata m "
    "JOIN agent_sessions_state s USING (session_id) "
    "WHERE m.key IN (SELECT key FROM agent_sessions_indexed) ORDER BY 4, 1"
)


def index_is_exact(db_file: str) -> bool:
    rows = raw_rows(db_file, INDEX_ROWS)
    return bool(rows) and rows == raw_rows(db_file, EXPECTED_ROWS)


def stored_counts(db_file: str) -> dict[str, int]:
    tables = ("state", "metadata", "index")
    counts = {
        t: raw_rows(db_file, f"SELECT COUNT(*) FROM agent_sessions_{t}")[0][0] for t in tables
    }
    counts["messages"] = raw_rows(db_file, "SELECT COUNT(*) FROM agent_messages")[0][0]
    return counts


async def ids(store: SQLiteStore, **filters: str) -> list[str]:
    page = await store.list_sessions(limit=100, metadata=filters)
    return [info.session_id for info in page.sessions]


async def test_the_url_option_reaches_the_store(db_file: str) -> None:
    store = open_store(f"sqlite:///{db_file}?index_metadata=user_id,tenant")
    assert isinstance(store, SQLiteStore)
    assert store.index_metadata == ("user_id", "tenant")
    await store.close()


@pytest.mark.parametrize("bad", ["a,a", ["a", ""], [3]])
def test_a_bad_index_metadata_is_refused_before_the_file_exists(db_file: str, bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="index_metadata"):
        SQLiteStore(db_file, index_metadata=bad)
    assert not Path(db_file).exists()


def test_a_session_url_refuses_the_store_option(db_file: str) -> None:
    with pytest.raises(ConfigurationError, match="index_metadata"):
        SQLiteSession.from_url("s", f"sqlite:///{db_file}?index_metadata=user_id")


async def test_every_kind_of_write_keeps_the_index_rows_exact(db_file: str) -> None:
    async with SQLiteStore(db_file, index_metadata=("user_id", "tenant")) as store:
        first = store.session("first")
        await first.update_metadata({"user_id": "u1", "tenant": "t", "other": "x"})
        assert index_is_exact(db_file)
        await first.add_items([user("hi")])  # moves the update time of every entry
        assert index_is_exact(db_file)
        await first.update_metadata({"user_id": "u2", "tenant": None})
        assert index_is_exact(db_file)
        await first.replace_items([user("compacted")])
        assert index_is_exact(db_file)
        forked = await first.fork("forked")
        assert index_is_exact(db_file)
        assert await ids(store, user_id="u2") == ["forked", "first"]
        await first.clear_session()
        assert index_is_exact(db_file)
        await store.delete_session(forked.session_id)
        assert raw_rows(db_file, INDEX_ROWS) == []


async def test_a_write_by_the_sdk_moves_the_index_entry(db_file: str) -> None:
    async with SQLiteStore(db_file, index_metadata=("user_id",)) as store:
        await store.session("shared").update_metadata({"user_id": "u1"})
        await store.session("later").update_metadata({"user_id": "u1"})
        await asyncio.sleep(1.1)  # the SDK's update time has seconds precision
        sdk = SDKSession("shared", db_file)
        await sdk.add_items([user("from the SDK")])
        sdk.close()
        assert index_is_exact(db_file)
        assert await ids(store, user_id="u1") == ["shared", "later"]


async def test_expired_sessions_are_deleted_by_later_writes_without_a_purge(db_file: str) -> None:
    async with SQLiteStore(db_file, index_metadata=("user_id",)) as store:
        # A TTL longer than the writes take: none expires before all are written.
        for n in range(200):
            short = store.session(f"short-{n:03d}", ttl=2.0)
            await short.update_metadata({"user_id": f"u{n % 7}"})
            await short.add_items([user("soon gone")])
        writer = store.session("writer")
        await writer.update_metadata({"user_id": "u0"})
        grown = stored_counts(db_file)
        await asyncio.sleep(2.1)
        for n in range(160):  # two expired sessions per write: 320 >= 200
            await writer.add_items([user(f"m{n}")])
        assert grown == {"state": 201, "metadata": 201, "index": 201, "messages": 200}
        assert stored_counts(db_file) == {"state": 1, "metadata": 1, "index": 1, "messages": 160}
        assert await store.count_sessions() == 1
        assert await store.purge_expired() == 0


async def test_count_reads_the_counter_minus_the_expired(db_file: str) -> None:
    async with SQLiteStore(db_file) as store:
        await store.session("a").add_items([user("a")])
        await store.session("b", ttl=0.05).add_items([user("b")])
        sdk = SDKSession("c", db_file)
        await sdk.add_items([user("c")])
        sdk.close()
        await asyncio.sleep(0.1)
        assert raw_rows(db_file, "SELECT n FROM agent_sessions_counters") == [(3,)]
        assert await store.count_sessions() == 2


async def test_reindex_resumes_after_an_interruption(db_file: str) -> None:
    async with SQLiteStore(db_file) as plain:
        for n in range(35):
            await plain.session(f"s{n:02d}").update_metadata({"user_id": "u1" if n % 2 else "u2"})
    store = SQLiteStore(db_file, index_metadata=("user_id",))
    store.batch = 10
    seen: list[int] = []

    def stop_after_two(done: int) -> None:
        seen.append(done)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await store.reindex(progress=stop_after_two)
    assert raw_rows(db_file, "SELECT resume_after FROM agent_sessions_indexed") == [("s19",)]
    assert await store.reindex(progress=seen.append) == 15
    assert seen == [10, 20, 10, 15]
    assert index_is_exact(db_file)
    assert len(raw_rows(db_file, INDEX_ROWS)) == 35
    assert await ids(store, user_id="u1") == [f"s{n:02d}" for n in range(33, 0, -2)]
    assert await store.reindex() == 0
    await store.close()


async def test_a_key_registered_on_an_empty_file_needs_no_reindex(db_file: str) -> None:
    async with SQLiteStore(db_file, index_metadata=("user_id",)) as store:
        await store.session("s").update_metadata({"user_id": "u1"})
        assert await store.reindex() == 0
    assert raw_rows(db_file, "SELECT key, resume_after FROM agent_sessions_indexed") == [
        ("user_id", None)
    ]


async def test_reindex_through_a_read_only_store_is_a_backend_error(db_file: str) -> None:
    async with SQLiteStore(db_file) as plain:
        await plain.session("s").update_metadata({"user_id": "u1"})
    async with SQLiteStore(db_file, index_metadata=("user_id",), read_only=True) as store:
        with pytest.raises(BackendError):
            await store.reindex()
        assert await ids(store, user_id="u1") == ["s"]


async def test_delete_sessions_through_the_index_deletes_in_batches(db_file: str) -> None:
    async with SQLiteStore(db_file, index_metadata=("user_id",)) as store:
        store.batch = 4
        for n in range(11):
            await store.session(f"s{n:02d}").update_metadata({"user_id": "u1" if n < 9 else "u2"})
        assert await store.delete_sessions(metadata={"user_id": "u1"}, dry_run=True) == 9
        assert await store.delete_sessions(metadata={"user_id": "u1"}) == 9
        assert await ids(store) == ["s10", "s09"]
        assert len(raw_rows(db_file, INDEX_ROWS)) == 2


def drop_the_new_side_tables(db_file: str) -> None:
    """Make the file look as this package's previous release left it."""
    conn = sqlite3.connect(db_file)
    for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND "
        "(name LIKE '%on_state_%' OR name LIKE '%on_metadata_%')"
    ).fetchall():
        conn.execute(f'DROP TRIGGER "{name}"')
    for table in ("index", "indexed", "counters"):
        conn.execute(f"DROP TABLE agent_sessions_{table}")
    conn.commit()
    conn.close()


async def test_a_file_of_the_previous_release_reads_read_only_unchanged(tmp_path: Path) -> None:
    db_file = str(tmp_path / "old.db")
    async with SQLiteStore(db_file) as store:
        await store.session("a").update_metadata({"user_id": "u1"})
        await store.session("b").update_metadata({"user_id": "u2"})
    drop_the_new_side_tables(db_file)
    before = fingerprint(tmp_path)
    async with SQLiteStore(db_file, index_metadata=("user_id",), read_only=True) as store:
        assert await ids(store, user_id="u1") == ["a"]
        assert await store.count_sessions() == 2
    assert fingerprint(tmp_path) == before


async def test_a_file_of_the_previous_release_gets_an_exact_counter(tmp_path: Path) -> None:
    db_file = str(tmp_path / "old.db")
    async with SQLiteStore(db_file) as store:
        for session_id in ("a", "b", "c"):
            await store.session(session_id).add_items([user(session_id)])
    drop_the_new_side_tables(db_file)
    async with SQLiteStore(db_file) as store:
        assert await store.count_sessions() == 3
        await store.session("d").add_items([user("d")])
        assert await store.count_sessions() == 4
