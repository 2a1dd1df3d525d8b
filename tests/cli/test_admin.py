"""`delete`, `purge` and `stats` on SQLite, Redis and Redis Cluster.

Each store gets the same sessions; the commands run side by side, once per module.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.cli.support import CONVERSATION, run_cli_together, seed, sqlite_url_for, stored_records
from tests.servers import ClusterTopology, RedisServer
from turnstore import BaseStore, MemoryStore, register_backend
from turnstore.cli.app import main

KEPT = [("keep-1", CONVERSATION, {"user_id": "u1"})]
EXPIRING = [("keep-2", CONVERSATION[:2], {})]  # expires within the hour
DOOMED = [("doomed", CONVERSATION[:1], {})]
SHORT_LIVED = [("gone-1", CONVERSATION[:1], {}), ("gone-2", CONVERSATION[:1], {})]
BACKENDS = ["sqlite", "redis"]


def stored_bytes(items: list[dict[str, Any]]) -> int:
    return sum(
        len(json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()) for item in items
    )


@dataclass
class AdminRuns:
    urls: dict[str, str]
    runs: dict[str, subprocess.CompletedProcess[str]]
    updated: dict[str, dict[str, datetime]]


@pytest.fixture(scope="module")
def admin(
    redis_server: RedisServer,
    redis_cluster: ClusterTopology,
    tmp_path_factory: pytest.TempPathFactory,
) -> AdminRuns:
    cwd = tmp_path_factory.mktemp("admin")
    urls = {
        "sqlite": sqlite_url_for(cwd / "admin.db"),
        "redis": f"{redis_server.url}?key_prefix=cli-admin-{uuid.uuid4().hex[:8]}",
        "cluster": f"{redis_cluster.url}?key_prefix=cli-admin-{uuid.uuid4().hex[:8]}",
    }
    for url in urls.values():
        seed(url, KEPT)
        seed(url, EXPIRING, ttl=3600)
        seed(url, DOOMED)
    first = {"delete": ["delete", "doomed"], "delete-missing": ["delete", "nobody"]}
    then = {"purge": ["purge"], "stats": ["stats", "--json"]}
    runs: dict[str, subprocess.CompletedProcess[str]] = {}
    for batch in (first, then):
        if batch is then:
            # After the deletes: a write removes a few expired sessions on its way, so the
            # short-lived ones must expire with no write after them for purge to find them.
            for url in urls.values():
                seed(url, SHORT_LIVED, ttl=0.2)
            time.sleep(0.3)
        commands = {
            f"{name}-{label}": ["--url", urls[name], *command]
            for name in BACKENDS
            for label, command in batch.items()
        }
        if batch is then:
            commands["cluster-stats"] = ["--url", urls["cluster"], "stats"]
        runs.update(run_cli_together(commands, cwd=cwd))
    updated = {
        name: {sid: record.updated_at for sid, record in stored_records(url).items()}
        for name, url in urls.items()
    }
    return AdminRuns(urls, runs, updated)


@pytest.mark.parametrize("backend", BACKENDS)
def test_delete_removes_the_session_and_says_so(admin: AdminRuns, backend: str) -> None:
    result = admin.runs[f"{backend}-delete"]
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Deleted session 'doomed' from {admin.urls[backend]}.\n"
    assert sorted(admin.updated[backend]) == ["keep-1", "keep-2"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_delete_of_a_missing_session_exits_1(admin: AdminRuns, backend: str) -> None:
    result = admin.runs[f"{backend}-delete-missing"]
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (f"turnstore: error: no session 'nobody' in {admin.urls[backend]}\n")


@pytest.mark.parametrize("backend", BACKENDS)
def test_purge_removes_expired_sessions_and_counts_them(admin: AdminRuns, backend: str) -> None:
    result = admin.runs[f"{backend}-purge"]
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Purged 2 expired sessions from {admin.urls[backend]}.\n"


@pytest.mark.parametrize("backend", BACKENDS)
def test_stats_json_counts_sessions_items_and_expiry(admin: AdminRuns, backend: str) -> None:
    result = admin.runs[f"{backend}-stats"]
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    updated = admin.updated[backend]
    assert stats == {
        "sessions": 2,
        "items": 8,
        "oldest_update": updated["keep-1"].isoformat(),
        "newest_update": updated["keep-2"].isoformat(),
        "expiring_within_1h": 1,
    }


def test_stats_prints_aligned_lines_on_cluster(admin: AdminRuns) -> None:
    result = admin.runs["cluster-stats"]
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"Store {admin.urls['cluster']}"
    values = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in lines[1:])
    assert values["sessions"] == "3"  # nothing was deleted or purged there
    assert values["items"] == "9"
    assert "stored bytes" not in values  # stats reads the listing, never the items
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d UTC \((just now|\d+ s ago)\)", values["oldest update"]
    )
    assert values["expiring within 1 h"] == "1"


@pytest.mark.parametrize("command", ["export", "import", "delete", "purge", "stats"])
def test_new_commands_show_their_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    # In-process: the parser is what answers --help (migrate's is run for real in
    # test_migrate, with its layouts).
    assert main([command, "--help"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: turnstore {command} [-h] [--url URL]")


# -- stats reads no items; reindex reports progress and the count --------------------------


def test_stats_counts_an_undecodable_item_without_reading_it(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    import redis

    from tests.cli.support import run_cli
    from turnstore.redis.keys import session_keys

    prefix = f"cli-stats-{uuid.uuid4().hex[:8]}"
    url = f"{redis_server.url}?key_prefix={prefix}"
    seed(url, [("torn", CONVERSATION[:2], {})])
    with redis.Redis.from_url(redis_server.url) as client:
        client.rpush(session_keys(prefix, "torn", 1).items, b'{"role": "user", "cont')
    result = run_cli("--url", url, "stats", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["items"] == 3  # counted by LLEN, never decoded
    assert result.stderr == ""  # no "cannot be decoded" warning: no item was read


def test_reindex_indexes_earlier_sessions_with_progress_and_prints_the_count(
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = f"cli-reindex-{uuid.uuid4().hex[:8]}"
    # Indexes nothing: the sessions predate the index. (A named memory store lives while a
    # store object of that name does.)
    earlier = MemoryStore(name=name)

    async def write() -> None:
        for n in range(3):
            await earlier.session(f"s{n}").update_metadata({"user_id": f"u{n % 2}"})

    asyncio.run(write())
    url = f"memory://{name}?index_metadata=user_id"
    assert main(["--url", url, "reindex", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"indexed": 3}
    assert "3/3 sessions" in captured.err

    async def listed() -> list[str]:
        store = MemoryStore(name=name, index_metadata=("user_id",))
        page = await store.list_sessions(metadata={"user_id": "u0"})
        return sorted(info.session_id for info in page.sessions)

    assert asyncio.run(listed()) == ["s0", "s2"]


def test_reindex_of_a_store_without_an_index_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", "memory://", "reindex"]) == 1
    assert "keeps no metadata index to rebuild" in capsys.readouterr().err


def test_purge_dry_run_counts_expired_sessions_of_a_memory_store(
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = f"cli-purge-{uuid.uuid4().hex[:8]}"
    held = MemoryStore(name=name)  # the named store lives while this object does

    async def write() -> None:
        await held.session("short", ttl=0.1).add_items(CONVERSATION[:1])
        await held.session("long").add_items(CONVERSATION[:1])
        await asyncio.sleep(0.3)

    asyncio.run(write())
    assert main(["--url", f"memory://{name}", "purge", "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"expired": 1, "removed": 0, "dry_run": True}
    assert main(["--url", f"memory://{name}", "purge", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"expired": 1, "removed": 1, "dry_run": False}


class StoreThatCannotCountExpired(MemoryStore):
    """A backend keeping the protocol's default `count_expired`, as a third party may."""

    count_expired = BaseStore.count_expired


def test_purge_dry_run_on_a_store_that_cannot_count_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    register_backend("nocount", lambda url, **options: StoreThatCannotCountExpired(**options))
    assert main(["--url", "nocount://", "purge", "--dry-run"]) == 1
    assert capsys.readouterr().err == (
        "turnstore: error: nocount://: this store cannot count expired sessions without "
        "removing them; run purge without --dry-run\n"
    )
