"""Scriptable: `--json` on every command, list cursors, delete by metadata or age, dry runs."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.cli.support import CONVERSATION, run_cli, seed, stored_records
from turnstore import open_store


def seed_five(url: str) -> list[str]:
    ids = [f"s{n}" for n in range(5)]
    seed(
        url,
        [(sid, CONVERSATION[:2], {"tenant": "a" if n < 3 else "b"}) for n, sid in enumerate(ids)],
    )
    return ids


def run_json(url: str, *args: str, cwd: Path, code: int = 0) -> Any:
    result = run_cli("--url", url, *args, "--json", cwd=cwd)
    assert result.returncode == code, result.stderr
    return json.loads(result.stdout)


def age(url: str, session_ids: list[str], days: int) -> None:
    """Make sessions look last updated `days` ago (an import with their old times)."""

    async def rewrite() -> None:
        from turnstore import export_session, import_session

        async with open_store(url) as store:
            for session_id in session_ids:
                record = await export_session(store, session_id)
                assert record is not None
                then = datetime.now(timezone.utc) - timedelta(days=days)
                moved = type(record)(
                    session_id=record.session_id,
                    items=[*record.items, {"role": "user", "content": "old"}],
                    metadata=record.metadata,
                    created_at=then,
                    updated_at=then,
                )
                await import_session(store, moved)

    asyncio.run(rewrite())


def test_list_cursor_pages_through_every_session_once(store_url: str, tmp_path: Path) -> None:
    ids = seed_five(store_url)
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        args = ["list", "--limit", "2"] + (["--cursor", cursor] if cursor else [])
        page = run_json(store_url, *args, cwd=tmp_path)
        seen += [s["session_id"] for s in page["sessions"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]


def test_list_all_lists_every_page(store_url: str, tmp_path: Path) -> None:
    ids = seed_five(store_url)
    listing = run_json(store_url, "list", "--all", "--limit", "2", cwd=tmp_path)
    assert [s["session_id"] for s in listing["sessions"]] == ids[::-1]
    assert listing["next_cursor"] is None


def test_a_bad_cursor_is_a_usage_error(store_url: str, tmp_path: Path) -> None:
    seed_five(store_url)
    result = run_cli("--url", store_url, "list", "--cursor", "nonsense!", cwd=tmp_path)
    assert result.returncode == 2
    assert "not a cursor" in result.stderr


def test_delete_by_metadata_deletes_the_matches(store_url: str, tmp_path: Path) -> None:
    seed_five(store_url)
    report = run_json(store_url, "delete", "--meta", "tenant=a", cwd=tmp_path)
    assert report == {"matched": 3, "deleted": 3, "dry_run": False, "missing": []}
    assert sorted(stored_records(store_url)) == ["s3", "s4"]


def test_delete_dry_run_counts_and_deletes_nothing(store_url: str, tmp_path: Path) -> None:
    seed_five(store_url)
    result = run_cli("--url", store_url, "delete", "--meta", "tenant=b", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Would delete 2 sessions (metadata tenant=b) from ")
    assert len(stored_records(store_url)) == 5


def test_delete_older_than_keeps_recent_sessions(store_url: str, tmp_path: Path) -> None:
    seed_five(store_url)
    age(store_url, ["s0", "s1"], days=40)
    report = run_json(store_url, "delete", "--older-than", "30d", cwd=tmp_path)
    assert report["deleted"] == 2
    assert sorted(stored_records(store_url)) == ["s2", "s3", "s4"]


def test_delete_named_ids_narrowed_by_metadata(store_url: str, tmp_path: Path) -> None:
    seed_five(store_url)
    report = run_json(
        store_url, "delete", "s0", "s3", "nope", "--meta", "tenant=a", cwd=tmp_path, code=1
    )
    assert report == {"matched": 1, "deleted": 1, "dry_run": False, "missing": ["nope"]}
    assert "s0" not in stored_records(store_url)


def test_delete_without_ids_or_conditions_is_refused(store_url: str, tmp_path: Path) -> None:
    seed_five(store_url)
    result = run_cli("--url", store_url, "delete", cwd=tmp_path)
    assert result.returncode == 2
    assert "delete needs session IDs or a condition" in result.stderr
    assert len(stored_records(store_url)) == 5


def test_purge_dry_run_counts_expired_sessions_and_removes_none(
    store_url: str, tmp_path: Path
) -> None:
    seed(store_url, [("short", CONVERSATION[:1], {})], ttl=0.2)
    seed(store_url, [("long", CONVERSATION[:1], {})])
    time.sleep(0.5)
    dry = run_json(store_url, "purge", "--dry-run", cwd=tmp_path)
    again = run_json(store_url, "purge", "--dry-run", cwd=tmp_path)
    real = run_json(store_url, "purge", cwd=tmp_path)
    assert dry == again == {"expired": 1, "removed": 0, "dry_run": True}
    assert real == {"expired": 1, "removed": 1, "dry_run": False}


def test_stats_json_shape(store_url: str, tmp_path: Path) -> None:
    seed_five(store_url)
    stats = run_json(store_url, "stats", cwd=tmp_path)
    assert set(stats) == {
        "sessions",
        "items",
        "oldest_update",
        "newest_update",
        "expiring_within_1h",
    }
    assert (stats["sessions"], stats["items"]) == (5, 10)


def test_export_and_import_json_summaries(store_url: str, tmp_path: Path) -> None:
    seed_five(store_url)
    out = tmp_path / "all.jsonl"
    exported = run_json(store_url, "export", "-o", str(out), cwd=tmp_path)
    assert exported == {
        "exported": 5,
        "items": 10,
        "file": str(out),
        "missing": [],
        "corrupt": 0,
    }
    imported = run_json(store_url, "import", str(out), cwd=tmp_path)
    assert imported == {
        "imported": 5,
        "created": 0,
        "replaced": 0,
        "unchanged": 5,
        "expired": 0,
        "refused": 0,
    }


def test_migrate_json_and_dry_run(store_url: str, tmp_path: Path) -> None:
    seed_five(store_url)
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    dry = run_cli("migrate", "--dry-run", store_url, target, "--json", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert (report["sessions"], report["created"], report["dry_run"]) == (5, 5, True)
    assert not (tmp_path / "copy.db").exists()
    real = run_cli("migrate", store_url, target, "--json", cwd=tmp_path)
    assert real.returncode == 0, real.stderr
    report = json.loads(real.stdout)
    assert (report["sessions"], report["created"], report["verified"]) == (5, 5, 5)
    assert sorted(stored_records(target)) == [f"s{n}" for n in range(5)]


def test_migrate_dry_run_in_words(store_url: str, tmp_path: Path) -> None:
    seed_five(store_url)
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    result = run_cli("migrate", "--dry-run", store_url, target, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "Would copy 5 of 5 sessions: 5 to create, 0 to replace, 0 already there "
        "(10 items read); nothing was written (dry run)."
    )


@pytest.fixture(params=["sqlite", "redis"])
def destination_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'destination.db'}"
    url: str = request.getfixturevalue("redis_url")
    return url


def test_migrate_dry_run_after_a_finished_migration_would_copy_nothing(
    sqlite_url: str, destination_url: str, tmp_path: Path
) -> None:
    seed_five(sqlite_url)
    assert run_cli("migrate", sqlite_url, destination_url, cwd=tmp_path).returncode == 0
    result = run_cli("migrate", "--dry-run", sqlite_url, destination_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "Would copy 0 of 5 sessions: 0 to create, 0 to replace, 5 already there "
        "(10 items read); nothing was written (dry run)."
    )


def test_migrate_dry_run_counts_what_the_destination_lacks_or_holds_differently(
    sqlite_url: str, destination_url: str, tmp_path: Path
) -> None:
    seed_five(sqlite_url)
    assert run_cli("migrate", sqlite_url, destination_url, cwd=tmp_path).returncode == 0
    seed(sqlite_url, [("s5", CONVERSATION[:1], {})])  # new in the source: to create

    async def drift() -> None:
        async with open_store(sqlite_url) as source:
            await source.session("s1").add_items([{"role": "user", "content": "more"}])
        async with open_store(destination_url) as destination:
            assert await destination.delete_session("s2")  # gone from it: to create again

    asyncio.run(drift())
    before = stored_records(destination_url)
    result = run_cli("migrate", "--dry-run", sqlite_url, destination_url, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    counts = {name: report[name] for name in ("sessions", "created", "replaced", "unchanged")}
    assert counts == {"sessions": 6, "created": 2, "replaced": 1, "unchanged": 3}
    assert report["dry_run"] is True
    assert stored_records(destination_url) == before  # nothing was written
    real = run_cli("migrate", sqlite_url, destination_url, "--json", cwd=tmp_path)
    done = json.loads(real.stdout)
    assert {name: done[name] for name in counts} == counts  # what the dry run said
