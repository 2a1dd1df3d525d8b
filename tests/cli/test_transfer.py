"""`export` and `import`: JSON Lines round trips between SQLite and Redis, idempotent imports,
and malformed lines refused whole."""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.cli.support import (
    CONVERSATION,
    run_cli,
    run_cli_together,
    seed,
    sqlite_url_for,
    stored_records,
)
from tests.servers import RedisServer
from turnstore import SessionRecord

SESSIONS: list[tuple[str, list[dict[str, Any]], dict[str, str]]] = [
    ("alpha", CONVERSATION[:4], {"user_id": "u1", "channel": "web"}),
    ("beta", CONVERSATION, {"user_id": "u2"}),
    ("gamma", CONVERSATION[:1], {}),
]
EXPIRING = ("delta", CONVERSATION[4:], {"note": "ü ✓ 雪"})
ORDER = ["alpha", "beta", "gamma", "delta"]  # least recently updated first
LINE_FIELDS = ["session_id", "created_at", "updated_at", "expires_at", "metadata", "items"]


@dataclass
class RoundTrip:
    """SQLite -> file -> Redis (twice) -> stdout -> stdin -> another SQLite file."""

    cwd: Path
    sqlite_url: str
    redis_url: str
    back_url: str
    export_to_file: subprocess.CompletedProcess[str]
    export_named: subprocess.CompletedProcess[str]
    first_import: subprocess.CompletedProcess[str]
    after_first_import: dict[str, SessionRecord]
    second_import: subprocess.CompletedProcess[str]
    after_second_import: dict[str, SessionRecord]
    export_to_stdout: subprocess.CompletedProcess[str]
    import_from_stdin: subprocess.CompletedProcess[str]

    def exported_lines(self) -> list[dict[str, Any]]:
        text = (self.cwd / "sessions.jsonl").read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def round_trip(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> RoundTrip:
    cwd = tmp_path_factory.mktemp("round-trip")
    sqlite_url = sqlite_url_for(cwd / "first.db")
    redis_url = f"{redis_server.url}?key_prefix=cli-rt-{uuid.uuid4().hex[:8]}"
    back_url = sqlite_url_for(cwd / "back.db")
    seed(sqlite_url, SESSIONS)
    seed(sqlite_url, [EXPIRING], ttl=3600)

    # Runs that do not depend on each other go side by side.
    exports = run_cli_together(
        {
            "file": ["--url", sqlite_url, "export", "-o", "sessions.jsonl"],
            "named": ["--url", sqlite_url, "export", "beta", "nobody"],
        },
        cwd=cwd,
    )
    first_import = run_cli("--url", redis_url, "import", "sessions.jsonl", cwd=cwd)
    after_first_import = stored_records(redis_url)
    again = run_cli_together(
        {
            "import": ["--url", redis_url, "import", "sessions.jsonl"],
            "export": ["--url", redis_url, "export"],
        },
        cwd=cwd,
    )
    after_second_import = stored_records(redis_url)
    import_from_stdin = run_cli(
        "--url", back_url, "import", "-", cwd=cwd, input=again["export"].stdout
    )
    return RoundTrip(
        cwd,
        sqlite_url,
        redis_url,
        back_url,
        exports["file"],
        exports["named"],
        first_import,
        after_first_import,
        again["import"],
        after_second_import,
        again["export"],
        import_from_stdin,
    )


def content(records: dict[str, SessionRecord]) -> dict[str, tuple[list[Any], dict[str, str]]]:
    return {sid: (record.items, record.metadata) for sid, record in records.items()}


EXPECTED = {sid: (items, metadata) for sid, items, metadata in [*SESSIONS, EXPIRING]}


def test_export_writes_one_line_per_session_oldest_first(round_trip: RoundTrip) -> None:
    result = round_trip.export_to_file
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Exported 4 sessions (13 items) to sessions.jsonl.\n"
    lines = round_trip.exported_lines()
    assert [line["session_id"] for line in lines] == ORDER
    assert all(list(line) == LINE_FIELDS for line in lines)
    assert {line["session_id"]: (line["items"], line["metadata"]) for line in lines} == EXPECTED


def test_export_writes_iso_times_and_the_expiry(round_trip: RoundTrip) -> None:
    lines = {line["session_id"]: line for line in round_trip.exported_lines()}
    now = datetime.now(timezone.utc)
    for line in lines.values():
        for name in ("created_at", "updated_at"):
            when = datetime.fromisoformat(line[name])
            assert when.utcoffset() == timedelta(0)
            assert abs((now - when).total_seconds()) < 300
    assert lines["alpha"]["expires_at"] is None
    expires = datetime.fromisoformat(lines["delta"]["expires_at"])
    assert timedelta(minutes=50) < expires - now <= timedelta(hours=1)


def test_import_writes_items_and_metadata_into_redis(round_trip: RoundTrip) -> None:
    result = round_trip.first_import
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Imported 4 sessions from sessions.jsonl into redis://")
    assert result.stdout.endswith(": 4 created.\n")
    assert content(round_trip.after_first_import) == EXPECTED


def test_import_keeps_the_expiry_time(round_trip: RoundTrip) -> None:
    exported = {line["session_id"]: line for line in round_trip.exported_lines()}
    imported = round_trip.after_first_import["delta"].expires_at
    assert imported is not None
    original = datetime.fromisoformat(exported["delta"]["expires_at"])
    assert abs((imported - original).total_seconds()) < 2
    assert round_trip.after_first_import["alpha"].expires_at is None


def test_importing_the_same_file_twice_changes_nothing(round_trip: RoundTrip) -> None:
    result = round_trip.second_import
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(": 4 unchanged.\n")
    first, second = round_trip.after_first_import, round_trip.after_second_import
    assert content(second) == content(first)
    assert {sid: r.updated_at for sid, r in second.items()} == {
        sid: r.updated_at for sid, r in first.items()
    }


def test_export_from_redis_and_import_into_sqlite_round_trips(round_trip: RoundTrip) -> None:
    exported = round_trip.export_to_stdout
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert sorted(line["session_id"] for line in lines) == sorted(ORDER)
    imported = round_trip.import_from_stdin
    assert imported.returncode == 0, imported.stderr
    assert "from standard input" in imported.stdout
    assert imported.stdout.endswith(": 4 created.\n")
    assert content(stored_records(round_trip.back_url)) == EXPECTED


def test_export_of_named_sessions_reports_a_missing_one(round_trip: RoundTrip) -> None:
    result = round_trip.export_named
    assert result.returncode == 1
    assert [json.loads(line)["session_id"] for line in result.stdout.splitlines()] == ["beta"]
    assert result.stderr == f"turnstore: no session 'nobody' in {round_trip.sqlite_url}\n"


GOOD_1 = {"session_id": "ok-1", "items": CONVERSATION[:2], "metadata": {"k": "v"}}
GOOD_2 = {"session_id": "ok-2", "items": CONVERSATION[4:]}
MALFORMED = [
    json.dumps(GOOD_1),
    '{"session_id": "broken", "items": [',
    json.dumps({"session_id": "bad-item", "items": [CONVERSATION[0], "not an object"]}),
    '{"session_id": "nan", "items": [{"role": "user", "score": NaN}]}',
    "[1, 2, 3]",
    "",
    json.dumps(GOOD_2),
    json.dumps({"session_id": "ok-1", "items": []}),
    json.dumps({"session_id": "bad-meta", "items": [], "metadata": {"k": 1}}),
    json.dumps({"session_id": "bad-time", "items": [], "created_at": "yesterday"}),
]


def test_import_refuses_malformed_lines_by_number_and_imports_the_rest(
    sqlite_url: str, tmp_path: Path
) -> None:
    (tmp_path / "mixed.jsonl").write_text("\n".join(MALFORMED) + "\n", encoding="utf-8")
    result = run_cli("--url", sqlite_url, "import", "mixed.jsonl", cwd=tmp_path)

    assert result.returncode == 1
    refused = result.stderr.splitlines()
    assert len(refused) == 7, result.stderr
    assert refused[0].startswith("turnstore: line 2: not JSON: ")
    assert refused[1].startswith("turnstore: line 3 (session 'bad-item'): items[1]: ")
    assert refused[2].startswith("turnstore: line 4: not JSON: NaN is not JSON")
    assert refused[3].startswith("turnstore: line 5: expected a JSON object")
    assert refused[4].startswith(
        "turnstore: line 8 (session 'ok-1'): the session is already on line 1"
    )
    assert refused[5].startswith("turnstore: line 9: metadata must be")
    assert refused[6].startswith("turnstore: line 10: created_at is not an ISO 8601 time")
    assert all(line.endswith("; nothing of it was imported") for line in refused)
    assert result.stdout.splitlines() == [
        f"Imported 2 sessions from mixed.jsonl into {sqlite_url}: 2 created.",
        "7 lines were refused (see the messages above); fix and rerun.",
    ]
    assert content(stored_records(sqlite_url)) == {
        "ok-1": (GOOD_1["items"], GOOD_1["metadata"]),
        "ok-2": (GOOD_2["items"], {}),
    }


def test_import_of_a_missing_file_exits_1(sqlite_url: str, tmp_path: Path) -> None:
    result = run_cli("--url", sqlite_url, "import", "nothing.jsonl", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        "turnstore: error: cannot read nothing.jsonl: No such file or directory\n"
    )
