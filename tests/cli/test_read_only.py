"""`list`, `show`, `stats` and `export` leave a SQLite file byte-identical, even the SDK's own."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest
from agents import SQLiteSession as SDKSession

from tests.cli.support import CONVERSATION, run_cli, seed, sqlite_url_for

READ_COMMANDS = [
    ["list"],
    ["list", "--json"],
    ["show", "chat"],
    ["show", "chat", "--json"],
    ["stats", "--json"],
    ["export"],
]


def database_digest(path: Path) -> str:
    """SHA-256 of the database file; its WAL beside it, if any, must hold no data."""
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sdk_file(path: Path, **tables: str) -> None:
    async def write() -> None:
        for session_id, items in (("chat", CONVERSATION), ("short", CONVERSATION[:1])):
            session = SDKSession(session_id, str(path), **tables)
            await session.add_items(items)
            session.close()

    asyncio.run(write())


@pytest.mark.parametrize("args", READ_COMMANDS, ids=" ".join)
def test_reading_a_file_the_sdk_wrote_leaves_it_unchanged(tmp_path: Path, args: list[str]) -> None:
    path = tmp_path / "sdk.db"
    sdk_file(path)
    before = database_digest(path)
    result = run_cli("--url", sqlite_url_for(path), *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert database_digest(path) == before


def test_list_of_an_sdk_file_shows_its_sessions_from_the_sdk_tables(tmp_path: Path) -> None:
    path = tmp_path / "sdk.db"
    sdk_file(path)
    result = run_cli("--url", sqlite_url_for(path), "list", "--json", cwd=tmp_path)
    counts = {s["session_id"]: s["item_count"] for s in json.loads(result.stdout)["sessions"]}
    assert counts == {"chat": len(CONVERSATION), "short": 1}


def test_show_of_an_sdk_file_prints_its_items(tmp_path: Path) -> None:
    path = tmp_path / "sdk.db"
    sdk_file(path)
    result = run_cli("--url", sqlite_url_for(path), "show", "chat", "--json", cwd=tmp_path)
    assert json.loads(result.stdout) == CONVERSATION


def test_a_file_with_other_table_names_is_named_not_changed(tmp_path: Path) -> None:
    path = tmp_path / "custom.db"
    sdk_file(path, sessions_table="conv", messages_table="conv_items")
    before = database_digest(path)
    default = run_cli("--url", sqlite_url_for(path), "list", cwd=tmp_path)
    named = run_cli(
        "--url",
        f"{sqlite_url_for(path)}?sessions_table=conv&messages_table=conv_items",
        "list",
        "--json",
        cwd=tmp_path,
    )
    assert default.returncode == 1
    assert default.stderr == (
        f"turnstore: error: SQLite database {path} has no table 'agent_sessions' (its tables: "
        "conv, conv_items, sqlite_sequence); name the tables with "
        "?sessions_table=...&messages_table=...\n"
    )
    assert named.returncode == 0, named.stderr
    assert {s["session_id"] for s in json.loads(named.stdout)["sessions"]} == {"chat", "short"}
    assert database_digest(path) == before


@pytest.mark.parametrize("args", READ_COMMANDS, ids=" ".join)
def test_reading_our_own_file_leaves_it_unchanged(tmp_path: Path, args: list[str]) -> None:
    path = tmp_path / "ours.db"
    seed(sqlite_url_for(path), [("chat", CONVERSATION, {"user_id": "u1"})], ttl=3600)
    before = database_digest(path)
    result = run_cli("--url", sqlite_url_for(path), *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert database_digest(path) == before


def test_list_of_an_in_memory_store_is_empty(tmp_path: Path) -> None:
    result = run_cli("--url", "sqlite://", "list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "No sessions in sqlite://.\n"
