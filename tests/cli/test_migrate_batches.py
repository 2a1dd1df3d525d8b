"""`migrate` in batches: an interruption between batches resumes exactly, and a reader of the
destination never sees a session half copied (each session is one atomic replace)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import uuid
from pathlib import Path

import redis

from tests.cli.support import CLI, CONVERSATION, cli_env, run_cli, sqlite_url_for, stored_records
from tests.servers import RedisServer
from turnstore import SessionRecord, import_sessions, open_store
from turnstore.redis.keys import session_keys

STOP_AFTER = "_TURNSTORE_MIGRATE_STOP_AFTER"
TURN = CONVERSATION[:4]


def write_source(url: str, count: int) -> None:
    """`count` sessions of one 4-item turn, each with a metadata pair, by the batched path."""
    records = [SessionRecord(f"b{n:05d}", TURN, {"n": str(n)}) for n in range(count)]

    async def write() -> None:
        async with open_store(url) as store:
            for start in range(0, count, 500):
                await import_sessions(store, records[start : start + 500])

    asyncio.run(write())


def test_an_interrupted_batched_migration_copies_the_rest_once_on_rerun(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    source = sqlite_url_for(tmp_path / "source.db")
    write_source(source, 1200)
    destination = f"{redis_server.url}?key_prefix=batches-{uuid.uuid4().hex[:8]}"

    first = run_cli("migrate", source, destination, cwd=tmp_path, env={STOP_AFTER: "500"})
    assert first.returncode == 130, first.stderr
    assert "interrupted after 500 of 1,200 sessions" in first.stderr
    assert len(stored_records(destination)) == 500

    rerun = run_cli("migrate", source, destination, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.splitlines()[-1].endswith(
        ": 700 created, 0 replaced, 500 already there; 1,200 verified."
    )
    copied = stored_records(destination)
    assert {sid: (r.items, r.metadata) for sid, r in copied.items()} == {
        f"b{n:05d}": (TURN, {"n": str(n)}) for n in range(1200)
    }


def test_a_reader_never_sees_a_session_half_copied(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    source = sqlite_url_for(tmp_path / "source.db")
    write_source(source, 4000)
    prefix = f"atomic-{uuid.uuid4().hex[:8]}"
    watched = [f"b{n:05d}" for n in range(0, 4000, 40)]
    keys = {sid: session_keys(prefix, sid, 1) for sid in watched}  # one bucket off Cluster
    process = subprocess.Popen(
        [*CLI, "migrate", source, f"{redis_server.url}?key_prefix={prefix}"],
        cwd=tmp_path,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: set[tuple[int, bool]] = set()
    try:
        with redis.Redis.from_url(redis_server.url) as client:
            while process.poll() is None:
                for sid in watched:
                    # One MULTI/EXEC: both keys as of one moment.
                    pipe = client.pipeline(transaction=True)
                    pipe.llen(keys[sid].items)
                    pipe.hget(keys[sid].meta, "m:n")
                    length, metadata = pipe.execute()
                    seen.add((int(length), metadata == str(int(sid[1:])).encode()))
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert seen <= {(0, False), (len(TURN), True)}
    assert seen == {(0, False), (len(TURN), True)}  # watched while the copy was under way


def test_the_progress_lines_count_every_batch(redis_server: RedisServer, tmp_path: Path) -> None:
    source = sqlite_url_for(tmp_path / "source.db")
    write_source(source, 600)
    destination = f"{redis_server.url}?key_prefix=progress-{uuid.uuid4().hex[:8]}"
    result = run_cli("migrate", source, destination, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    counts = [
        int(found.group(1).replace(",", ""))
        for found in re.finditer(r"^  ([\d,]+)/600 sessions", result.stdout, re.MULTILINE)
    ]
    assert counts == sorted(counts) and counts[-1] == 600
    assert len(counts) >= 5  # a line per tenth, not one at the end
