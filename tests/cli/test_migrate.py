"""`migrate`: from the SDK's SQLiteSession file and RedisSession keys, from the
openai-agents-redis layout and from our own layout, to SQLite, Redis and Redis Cluster;
verified, resumable, reporting corrupt items, never showing a password.

The migrations run once per module, side by side (a run is mostly interpreter startup), and
the tests below read their results.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis.cluster import ClusterNode, RedisCluster

from tests.cli.support import (
    CLI,
    CONVERSATION,
    cli_env,
    run_cli_on_tty,
    run_cli_together,
    seed,
    sqlite_url_for,
    stored_records,
)
from tests.servers import ClusterTopology, RedisServer, start_redis
from turnstore import SessionRecord, import_sessions, open_store
from turnstore.cli.app import main
from turnstore.redis.keys import session_keys

PASSWORD = "hunter2-migrate-secret"
STOP_AFTER = "_TURNSTORE_MIGRATE_STOP_AFTER"

#: What the SDK's SQLiteSession writes, oldest session first.
SDK_SQLITE = {"sdk-a": CONVERSATION[:4], "sdk-b": CONVERSATION, "sdk-c": CONVERSATION[:1]}
#: What the SDK's RedisSession writes (an id with a colon, one session with a TTL).
SDK_REDIS = {"user:42": CONVERSATION[:3], "plain": CONVERSATION[3:]}
#: What openai-agents-redis wrote; "emptied" had its items popped (its hash stays).
OPENAI_AGENTS_REDIS = {
    "oar-1": CONVERSATION[:2],
    "oar-2": CONVERSATION,
    "oar-3": CONVERSATION[4:],
    "emptied": [],
}
#: Our own layout, for the interrupted migration.
OWN = {f"own-{n}": CONVERSATION[: n + 1] for n in range(5)}


def unique(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


def items_of(records: dict[str, SessionRecord]) -> dict[str, list[Any]]:
    return {sid: record.items for sid, record in records.items()}


# -- writing the sources the way each package did -----------------------------------------


def write_sdk_sqlite(path: Path) -> None:
    from agents import SQLiteSession

    async def write() -> None:
        for session_id, items in SDK_SQLITE.items():
            session = SQLiteSession(session_id, path)
            await session.add_items(items)
            session.close()

    asyncio.run(write())


def write_sdk_redis(url: str, key_prefix: str) -> None:
    try:
        from agents.extensions.memory import RedisSession as SdkRedisSession
    except ImportError as exc:  # the SDK's own floor for redis-py is above this package's
        pytest.skip(f"the SDK's RedisSession cannot be imported here: {exc}")

    async def write() -> None:
        client = aioredis.Redis.from_url(url)
        try:
            for session_id, items in SDK_REDIS.items():
                ttl = 3600 if session_id == "plain" else None
                session = SdkRedisSession(
                    session_id, redis_client=client, key_prefix=key_prefix, ttl=ttl
                )
                await session.add_items(items)
        finally:
            await client.aclose()

    asyncio.run(write())


def write_openai_agents_redis(client: RedisCluster) -> None:
    """Keys as openai-agents-redis wrote them: a hash of times, a list of `json.dumps`."""
    base = time.time() - 100
    for offset, (session_id, items) in enumerate(OPENAI_AGENTS_REDIS.items()):
        stamp = str(base + offset)
        client.hset(
            f"agent_session:{session_id}",
            mapping={"session_id": session_id, "created_at": stamp, "updated_at": stamp},
        )
        if items:
            client.rpush(f"agent_messages:{session_id}", *[json.dumps(i) for i in items])


def corrupt_own_redis(url: str, key_prefix: str) -> None:
    """A session of our own layout whose second stored item is cut short."""
    seed(f"{url}?key_prefix={key_prefix}", [("torn", CONVERSATION[:1], {"k": "v"})])
    with redis.Redis.from_url(url) as client:
        items_key = session_keys(key_prefix, "torn", 1).items  # one bucket off Cluster
        client.rpush(items_key, b'{"role": "user", "cont')
        client.rpush(items_key, json.dumps(CONVERSATION[1]).encode())


# -- the migrations ------------------------------------------------------------------------


@dataclass
class Migrations:
    cwd: Path
    urls: dict[str, str]
    runs: dict[str, subprocess.CompletedProcess[str]]
    sdk_file_tables: set[str]


@pytest.fixture(scope="module")
def cluster_client(redis_cluster: ClusterTopology) -> Iterator[RedisCluster]:
    nodes = [ClusterNode(host, port) for host, port in redis_cluster.startup_nodes]
    client = RedisCluster(startup_nodes=nodes)
    try:
        yield client
    finally:
        for session_id in OPENAI_AGENTS_REDIS:
            client.delete(f"agent_session:{session_id}", f"agent_messages:{session_id}")
        client.close()


@pytest.fixture(scope="module")
def migrations(
    redis_server: RedisServer,
    redis_cluster: ClusterTopology,
    cluster_client: RedisCluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> Migrations:
    cwd = tmp_path_factory.mktemp("migrate")
    sdk_prefix = unique("sdk")
    urls = {
        "sdk_file": sqlite_url_for(cwd / "sdk.db"),
        "sdk_redis": f"{redis_server.url}?key_prefix={sdk_prefix}",
        "oar_cluster": redis_cluster.url,
        "own_file": sqlite_url_for(cwd / "own.db"),
        "torn_redis": redis_server.url,
        # destinations
        "to_cluster": f"{redis_cluster.url}?key_prefix={unique('from-sdk-file')}",
        "to_redis": f"{redis_server.url}?key_prefix={unique('from-sdk-redis')}",
        "to_file": sqlite_url_for(cwd / "from-oar.db"),
        "resumed": f"{redis_server.url}?key_prefix={unique('resumed')}",
        "torn_copy": sqlite_url_for(cwd / "torn-copy.db"),
        "trimming": f"{redis_server.url}?key_prefix={unique('trimmed')}&max_items=2",
    }
    torn_prefix = unique("torn")
    write_sdk_sqlite(cwd / "sdk.db")
    write_sdk_redis(redis_server.url, sdk_prefix)
    write_openai_agents_redis(cluster_client)
    seed(urls["own_file"], [(sid, items, {"n": sid[-1]}) for sid, items in OWN.items()])
    corrupt_own_redis(redis_server.url, torn_prefix)
    torn_url = f"{redis_server.url}?key_prefix={torn_prefix}"

    runs = run_cli_together(
        {
            "sdk_file": ["migrate", "--from-layout", "sdk", urls["sdk_file"], urls["to_cluster"]],
            "sdk_redis": [
                "migrate",
                "--from-layout",
                "sdk",
                urls["sdk_redis"],
                urls["to_redis"],
            ],
            "oar": [
                "migrate",
                "--from-layout",
                "openai-agents-redis",
                urls["oar_cluster"],
                urls["to_file"],
            ],
            "interrupted": ["migrate", urls["own_file"], urls["resumed"]],
            "torn": ["migrate", torn_url, urls["torn_copy"]],
            "trimming": ["migrate", "--from-layout", "sdk", urls["sdk_file"], urls["trimming"]],
        },
        cwd=cwd,
        env={"interrupted": {STOP_AFTER: "2"}},
    )
    with sqlite3.connect(cwd / "sdk.db") as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}

    # A copy left half done by something else: the rerun must replace it, not add to it.
    async def half_copy() -> None:
        async with open_store(urls["resumed"]) as store:
            await store.session("own-2").add_items(OWN["own-2"][:1])

    asyncio.run(half_copy())
    runs.update(
        run_cli_together({"resumed": ["migrate", urls["own_file"], urls["resumed"]]}, cwd=cwd)
    )
    return Migrations(cwd, urls, runs, tables)


def test_migrates_an_sdk_sqlite_file_to_redis_cluster(migrations: Migrations) -> None:
    result = migrations.runs["sdk_file"]
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"Migrating {migrations.urls['sdk_file']} (layout: sdk) to {migrations.urls['to_cluster']}"
    )
    assert lines[1] == "Found 3 sessions, 11 items."
    assert lines[-1].startswith("Copied 3 sessions (11 items) in ")
    assert lines[-1].endswith(": 3 created, 0 replaced, 0 already there; 3 verified.")
    copied = stored_records(migrations.urls["to_cluster"])
    assert items_of(copied) == SDK_SQLITE


def test_reads_the_sdk_sqlite_file_without_writing_to_it(migrations: Migrations) -> None:
    assert migrations.sdk_file_tables == {
        "agent_sessions",
        "agent_messages",
        "idx_agent_messages_session_id",
        "sqlite_sequence",
        "sqlite_autoindex_agent_sessions_1",
    }


def test_prints_plain_progress_lines_off_a_terminal(migrations: Migrations) -> None:
    progress = [
        line for line in migrations.runs["sdk_file"].stdout.splitlines() if line.startswith("  ")
    ]
    assert progress[-1].startswith("  3/3 sessions, 11/11 items (")
    assert progress[-1].endswith(" items/s, done)")
    assert any("ETA" in line for line in progress[:-1])


def test_migrates_keys_of_the_sdk_redis_session(migrations: Migrations) -> None:
    result = migrations.runs["sdk_redis"]
    assert result.returncode == 0, result.stderr
    assert "Found 2 sessions, 6 items." in result.stdout
    copied = stored_records(migrations.urls["to_redis"])
    assert items_of(copied) == SDK_REDIS
    assert copied["user:42"].expires_at is None
    expires = copied["plain"].expires_at
    assert expires is not None
    assert timedelta(minutes=50) < expires - datetime.now(timezone.utc) <= timedelta(hours=1)


def test_migrates_the_openai_agents_redis_layout_from_a_cluster(
    migrations: Migrations,
) -> None:
    result = migrations.runs["oar"]
    assert result.returncode == 0, result.stderr
    assert "Found 4 sessions, 10 items." in result.stdout
    assert ": 4 created, 0 replaced, 0 already there; 4 verified." in result.stdout
    copied = stored_records(migrations.urls["to_file"])
    assert items_of(copied) == OPENAI_AGENTS_REDIS


def test_an_interrupted_migration_stops_with_exit_130(migrations: Migrations) -> None:
    result = migrations.runs["interrupted"]
    assert result.returncode == 130
    assert "turnstore: interrupted after 2 of 5 sessions; run the same command again" in (
        result.stderr
    )


def test_a_rerun_resumes_and_copies_every_session_exactly_once(migrations: Migrations) -> None:
    result = migrations.runs["resumed"]
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].endswith(
        ": 2 created, 1 replaced, 2 already there; 5 verified."
    )
    copied = stored_records(migrations.urls["resumed"])
    assert items_of(copied) == OWN
    assert {sid: r.metadata for sid, r in copied.items()} == {sid: {"n": sid[-1]} for sid in OWN}


def test_a_corrupt_source_item_is_reported_and_exits_1(migrations: Migrations) -> None:
    result = migrations.runs["torn"]
    assert result.returncode == 1
    assert result.stderr.startswith(
        "turnstore: session 'torn': source item at position 1 cannot be decoded ("
    )
    assert result.stderr.rstrip().endswith("not copied, it stays in the source")
    assert result.stdout.splitlines()[-1] == (
        "Problems: 1 corrupt source item (see the messages above)."
    )
    copied = stored_records(migrations.urls["torn_copy"])
    assert items_of(copied) == {"torn": [CONVERSATION[0], CONVERSATION[1]]}
    assert copied["torn"].metadata == {"k": "v"}


def test_a_copy_that_differs_from_its_source_fails_verification(migrations: Migrations) -> None:
    result = migrations.runs["trimming"]  # the destination keeps at most 2 items
    assert result.returncode == 1
    failures = sorted(result.stderr.splitlines())
    assert len(failures) == 2, result.stderr
    assert failures[0].startswith(
        "turnstore: session 'sdk-a': verification failed: the source has 4 items (digest "
    )
    assert failures[1].startswith("turnstore: session 'sdk-b': verification failed")
    assert result.stdout.splitlines()[-1] == (
        "Problems: 2 sessions failing verification (see the messages above)."
    )


def test_shows_a_progress_bar_on_a_terminal(migrations: Migrations) -> None:
    shown = run_cli_on_tty(
        "migrate",
        "--from-layout",
        "sdk",
        migrations.urls["sdk_file"],
        sqlite_url_for(migrations.cwd / "tty.db"),
        cwd=migrations.cwd,
    )
    assert "━" in shown
    assert "sessions/s" in shown and "items/s" in shown and "ETA" in shown
    assert "11/11" in shown
    assert "Copied 3 sessions (11 items)" in shown


def test_ctrl_c_stops_after_the_batches_being_copied(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    source = sqlite_url_for(tmp_path / "many.db")

    # Enough sessions that the copy is still under way when the signal lands: batches go
    # fast, and up to a few of them finish after it.
    records = [SessionRecord(f"m{n:05d}", CONVERSATION[:2]) for n in range(10_000)]

    async def write_many() -> None:
        async with open_store(source) as store:
            for start in range(0, len(records), 1000):
                await import_sessions(store, records[start : start + 1000])

    asyncio.run(write_many())
    destination = f"{redis_server.url}?key_prefix={unique('ctrl-c')}"
    process = subprocess.Popen(
        [*CLI, "migrate", source, destination],
        cwd=tmp_path,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        while "/10,000 sessions" not in process.stdout.readline():  # copying has begun
            assert process.poll() is None
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    found = re.search(
        r"interrupted after ([\d,]+) of 10,000 sessions; run the same command", stderr
    )
    assert found, stderr
    done = int(found.group(1).replace(",", ""))
    assert 0 < len(stored_records(destination)) == done < 10_000


# -- passwords, usage, help ----------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_with_password() -> Iterator[RedisServer]:
    server = start_redis("--requirepass", PASSWORD)
    try:
        yield server
    finally:
        server.stop()


def test_neither_url_shows_its_password(redis_with_password: RedisServer, tmp_path: Path) -> None:
    port = redis_with_password.port
    source = f"redis://:{PASSWORD}@127.0.0.1:{port}/0?key_prefix=pw-src"
    seed(source, [("s1", CONVERSATION, {})])
    destination = f"redis://:{PASSWORD}@127.0.0.1:{port}/0?key_prefix=pw-dst"
    wrong = f"redis://:not-{PASSWORD}@127.0.0.1:{port}/0?key_prefix=pw-dst"
    runs = run_cli_together(
        {"ok": ["migrate", source, destination], "refused": ["migrate", source, wrong]},
        cwd=tmp_path,
    )
    ok, refused = runs["ok"], runs["refused"]
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(
        f"Migrating redis://:***@127.0.0.1:{port}/0?key_prefix=pw-src (layout: own) "
        f"to redis://:***@127.0.0.1:{port}/0?key_prefix=pw-dst\n"
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        f"turnstore: error: destination: redis://:***@127.0.0.1:{port}/0?key_prefix=pw-dst: "
    )
    for result in (ok, refused):
        assert PASSWORD not in result.stdout + result.stderr
        assert "Traceback" not in result.stderr


def test_usage_errors_exit_2_and_a_missing_source_exits_1(tmp_path: Path) -> None:
    target = sqlite_url_for(tmp_path / "target.db")
    runs = run_cli_together(
        {
            "layout": ["migrate", "--from-layout", "nope", target, target],
            "mismatch": ["migrate", "--from-layout", "openai-agents-redis", target, target],
            "missing": ["migrate", sqlite_url_for(tmp_path / "absent.db"), target],
        },
        cwd=tmp_path,
    )
    assert runs["layout"].returncode == 2
    assert "invalid choice: 'nope'" in runs["layout"].stderr
    assert runs["mismatch"].returncode == 2
    assert "openai-agents-redis reads a Redis URL" in runs["mismatch"].stderr
    assert runs["missing"].returncode == 1
    assert runs["missing"].stderr == (
        f"turnstore: error: source: cannot open the SQLite database {tmp_path / 'absent.db'}: "
        "it does not exist\n"
    )
    assert not (tmp_path / "target.db").exists()


def test_help_documents_the_layouts(capsys: pytest.CaptureFixture[str]) -> None:
    # In-process: the parser answers --help before anything else runs.
    assert main(["migrate", "--help"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("usage: turnstore migrate [-h] [--url URL] [--timeout S] [--json]")
    for documented in (
        "agent_sessions and agent_messages",
        "{key_prefix}:{id}:messages",
        "default: agents:session",
        "agent_session:{id}",
        "agent_messages:{id}",
        "SCAN, never KEYS",
        "resume",
    ):
        assert documented in shown
