"""Failures of SQLite reach callers as our errors, sqlite3's error as the cause."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from turnstore import BackendError, BackendUnavailableError, SQLiteSession, SQLiteStore


def turn(n: int) -> list[dict[str, str]]:
    return [
        {"role": "user", "content": f"question {n} " + "x" * 2000},
        {"role": "assistant", "content": f"answer {n} " + "y" * 2000},
    ]


async def test_a_file_that_is_not_a_database_is_a_backend_error_naming_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database\n" * 200)
    with pytest.raises(BackendError, match="not a database") as caught:
        session = SQLiteSession("s", path)
        await session.add_items(turn(0))
    assert not isinstance(caught.value, BackendUnavailableError)
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == b"this is not a database\n" * 200


async def test_ping_of_a_store_on_a_file_that_is_not_a_database_raises_what_sqlite_said(
    tmp_path: Path,
) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"\x00garbage" * 512)
    store = SQLiteStore(path)
    try:
        with pytest.raises(BackendError, match="not a database") as caught:
            await store.ping()
        assert not isinstance(caught.value, BackendUnavailableError)
    finally:
        await store.close()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs: a real file system that fills up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        timeout=10,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=10)


async def test_a_full_disk_is_a_backend_error_and_the_refused_batch_is_not_stored(
    tiny_disk: Path,
) -> None:
    session = SQLiteSession("s", tiny_disk / "full.db")
    stored = 0
    try:
        with pytest.raises(BackendError, match="full") as caught:
            for n in range(1000):
                await session.add_items(turn(n))
                stored += 1
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
        assert stored > 0
        items = await session.get_items()
        assert len(items) == 2 * stored  # every acknowledged batch, nothing of the refused one
        assert items[-1]["content"].startswith(f"answer {stored - 1} ")
    finally:
        await session.close()
