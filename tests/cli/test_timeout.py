"""`--timeout`: a server that never answers, or a lock never released, ends the command."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.support import CONVERSATION, run_cli, seed, sqlite_url_for
from tests.faults import silent_listener


@pytest.fixture
def silent_port() -> Iterator[int]:
    with silent_listener() as port:
        yield port


@pytest.mark.parametrize("command", [["list"], ["show", "s1"], ["stats"], ["purge"]])
def test_a_server_that_never_answers_ends_with_exit_1_and_one_line(
    silent_port: int, tmp_path: Path, command: list[str]
) -> None:
    url = f"redis://127.0.0.1:{silent_port}/0"
    started = time.monotonic()
    result = run_cli("--url", url, "--timeout", "1.5", *command, cwd=tmp_path, timeout=30)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert result.stderr == (f"turnstore: error: {url}: no answer within 1.5 s (--timeout 1.5)\n")
    assert result.stdout == ""
    assert elapsed < 1.5 + 6  # the budget, the interpreter's start and the grace to unwind


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
