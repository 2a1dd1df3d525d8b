"""`--timeout`: a server that never answers, or a lock never released, ends the command."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.cli.support import CONVERSATION, run_cli, seed, sqlite_url_for
from tests.faults import silent_listener
from turnstore import BackendUnavailableError, SessionRecord, import_sessions, open_store
from turnstore.migration import open_source


@pytest.fixture
def silent_port() -> Iterator[int]:
    with silent_listener() as port:
        yield port


COMMANDS = [
    ["list"],
    ["show", "s1"],
    ["stats"],
    ["purge"],
    ["purge", "--dry-run"],
    ["delete", "s1"],
    ["delete", "--meta", "k=v"],
    ["delete", "--older-than", "30d"],
    ["export"],
    ["export", "s1", "-o", "out.jsonl"],
    ["import", "in.jsonl"],
    ["reindex"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_server_that_never_answers_ends_with_exit_1_and_one_line(
    silent_port: int, tmp_path: Path, command: list[str]
) -> None:
    url = f"redis://127.0.0.1:{silent_port}/0?index_metadata=k"  # (reindex needs an index)
    (tmp_path / "in.jsonl").write_text('{"session_id": "s1", "items": []}\n')
    started = time.monotonic()
    result = run_cli("--url", url, "--timeout", "1.5", *command, cwd=tmp_path, timeout=30)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert result.stderr == (f"turnstore: error: {url}: no answer within 1.5 s (--timeout 1.5)\n")
    assert result.stdout == ""
    assert elapsed < 1.5 + 6  # the budget, the interpreter's start and the grace to unwind


@pytest.mark.parametrize("side", ["source", "destination"])
@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]], ids=["copy", "dry-run"])
def test_a_migration_names_the_side_that_never_answers(
    silent_port: int, tmp_path: Path, side: str, dry_run: list[str]
) -> None:
    silent = f"redis://:pw@127.0.0.1:{silent_port}/0"
    shown = f"redis://:***@127.0.0.1:{silent_port}/0"
    sqlite_url = sqlite_url_for(tmp_path / "s.db")
    seed(sqlite_url, [("s1", CONVERSATION, {})])
    urls = [silent, sqlite_url] if side == "source" else [sqlite_url, silent]
    started = time.monotonic()
    result = run_cli("--timeout", "1.5", "migrate", *dry_run, *urls, cwd=tmp_path, timeout=30)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert result.stderr == (
        f"turnstore: error: {side}: {shown}: no answer within 1.5 s (--timeout 1.5)\n"
    )
    assert "pw" not in result.stdout + result.stderr
    assert elapsed < 1.5 + 6


def test_a_migration_from_sdk_redis_keys_names_the_source_that_never_answers(
    silent_port: int, tmp_path: Path
) -> None:
    silent = f"redis://127.0.0.1:{silent_port}/0"
    target = sqlite_url_for(tmp_path / "copy.db")
    result = run_cli(
        "--timeout", "1.5", "migrate", "--from-layout", "sdk", silent, target, cwd=tmp_path
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"turnstore: error: source: {silent}: no answer within 1.5 s (--timeout 1.5)\n"
    )


@pytest.mark.parametrize("layout", ["own", "sdk", "openai-agents-redis"])
def test_a_migration_source_is_given_the_time_budget(silent_port: int, layout: str) -> None:
    # Without the CLI's watchdog: the source's own calls give up within their budget.
    async def plan() -> float:
        source = open_source(layout, f"redis://127.0.0.1:{silent_port}/0", timeout=1.0)
        started = time.monotonic()
        try:
            with pytest.raises(BackendUnavailableError, match=f"127.0.0.1:{silent_port}"):
                await source.plan()
        finally:
            await source.close()
        return time.monotonic() - started

    assert asyncio.run(plan()) < 1.0 + 5  # the budget, plus at most one socket timeout


def test_the_default_timeout_is_ten_seconds(silent_port: int, tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{silent_port}/0"
    started = time.monotonic()
    result = run_cli("--url", url, "list", cwd=tmp_path, timeout=40)
    assert result.returncode == 1
    assert "no answer within 10 s" in result.stderr
    assert 10 <= time.monotonic() - started < 10 + 8


def test_a_sqlite_write_lock_never_released_ends_the_command(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    url = sqlite_url_for(path)
    seed(url, [("s1", CONVERSATION, {})])
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        started = time.monotonic()
        result = run_cli("--url", url, "--timeout", "1", "delete", "s1", cwd=tmp_path, timeout=30)
        elapsed = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("turnstore: error: ")
    assert "locked" in result.stderr or "no answer within 1 s" in result.stderr
    assert elapsed < 1 + 6


def test_a_command_that_answers_in_time_is_not_stopped(redis_url: str, tmp_path: Path) -> None:
    seed(redis_url, [("s1", CONVERSATION, {})])
    result = run_cli("--url", redis_url, "--timeout", "5", "show", "s1", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_a_timeout_that_is_not_a_positive_number_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("--timeout", "0", "list", cwd=tmp_path)
    assert result.returncode == 2
    assert "--timeout: must be a positive number of seconds" in result.stderr


# -- long commands that keep being answered -------------------------------------------------

#: Sessions in the stores below: enough that a purge or a bulk delete takes several times the
#: --timeout it is given in all, while each of its transactions (500 sessions) takes a small
#: part of it.
MANY = 40_000
TIGHT = "0.3"
#: Seconds after the start of the seeding at which every session of the expired store
#: expires: after the seeding ends, so that no write of the seeding finds an expired session
#: to clean up on its way (which would leave little to purge).
EXPIRE_AFTER = 4.0


def seed_many(url: str, *, expire: bool) -> None:
    """`MANY` one-item sessions with metadata k=v, all expiring `EXPIRE_AFTER` seconds from
    now when `expire` (then this waits for them to expire)."""

    async def write() -> None:
        deadline = datetime.now(timezone.utc) + timedelta(seconds=EXPIRE_AFTER)
        async with open_store(url) as store:
            for start in range(0, MANY, 2000):
                records = [
                    SessionRecord(
                        f"s{n}",
                        [{"role": "user", "content": "hi"}],
                        {"k": "v"},
                        expires_at=deadline if expire else None,
                    )
                    for n in range(start, start + 2000)
                ]
                await import_sessions(store, records)
        if expire:
            left = (deadline - datetime.now(timezone.utc)).total_seconds()
            # (A deadline is stored as the time of the write plus what was left of it when
            # the batch was prepared: up to a batch's write time later.)
            await asyncio.sleep(max(0.0, left) + 1.0)

    asyncio.run(write())


@pytest.fixture(scope="module")
def expired_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("expired") / "expired.db"
    seed_many(sqlite_url_for(path), expire=True)
    return path


@pytest.fixture(scope="module")
def live_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("live") / "live.db"
    seed_many(sqlite_url_for(path), expire=False)
    return path


def count_expired(url: str) -> int:
    async def count() -> int:
        async with open_store(url) as store:
            return await store.count_expired()

    return asyncio.run(count())


def copy_of(path: Path, tmp_path: Path) -> str:
    target = tmp_path / path.name
    shutil.copyfile(path, target)
    return sqlite_url_for(target)


def test_a_purge_longer_than_the_timeout_runs_to_the_end_while_answered(
    expired_file: Path, tmp_path: Path
) -> None:
    url = copy_of(expired_file, tmp_path)
    expired = count_expired(url)
    assert expired > 20 * 500  # many transactions' worth
    result = run_cli("--url", url, "--timeout", TIGHT, "purge", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"expired": expired, "removed": expired, "dry_run": False}
    assert count_expired(url) == 0


def test_a_bulk_delete_longer_than_the_timeout_runs_to_the_end_while_answered(
    live_file: Path, tmp_path: Path
) -> None:
    url = copy_of(live_file, tmp_path)
    result = run_cli(
        "--url", url, "--timeout", TIGHT, "delete", "--meta", "k=v", "--json", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["deleted"] == MANY
