"""`list` and `show` on stores put in place with the library."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

from tests.cli.support import CONVERSATION, run_cli, seed, table_ids

IDS = ["oldest", "middle", "newest"]


def seed_three(url: str) -> None:
    seed(
        url,
        [
            ("oldest", CONVERSATION[:1], {"user_id": "u1"}),
            ("middle", CONVERSATION[:4], {"user_id": "u2", "channel": "web"}),
            ("newest", CONVERSATION, {"user_id": "u1"}),
        ],
    )


def test_list_shows_a_table_newest_first(store_url: str, tmp_path: Path) -> None:
    seed_three(store_url)
    result = run_cli("--url", store_url, "list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:6] == [
        "SESSION",
        "ITEMS",
        "UPDATED",
        "CREATED",
        "(UTC)",
        "EXPIRES",
    ]
    assert table_ids(result.stdout, IDS) == ["newest", "middle", "oldest"]
    newest_row = next(line for line in result.stdout.splitlines() if line.startswith("newest"))
    assert re.search(r"^newest\s+6\s+(just now|\d+ s ago)\s.*\snever\s+user_id=u1$", newest_row)


def test_list_json_is_an_object_of_sessions_and_a_cursor(store_url: str, tmp_path: Path) -> None:
    seed_three(store_url)
    result = run_cli("--url", store_url, "list", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert listing["next_cursor"] is None
    sessions = listing["sessions"]
    assert [s["session_id"] for s in sessions] == ["newest", "middle", "oldest"]
    middle = sessions[1]
    assert set(middle) == {
        "session_id",
        "item_count",
        "created_at",
        "updated_at",
        "expires_at",
        "metadata",
    }
    assert middle["item_count"] == 4
    assert middle["metadata"] == {"user_id": "u2", "channel": "web"}
    assert middle["expires_at"] is None
    created = datetime.fromisoformat(middle["created_at"])
    assert created.tzinfo is not None
    assert abs((datetime.now(timezone.utc) - created).total_seconds()) < 120


def test_list_meta_keeps_sessions_with_every_pair(redis_url: str, tmp_path: Path) -> None:
    seed_three(redis_url)
    result = run_cli("--url", redis_url, "list", "--meta", "user_id=u1", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)["sessions"]
    assert [s["session_id"] for s in listed] == ["newest", "oldest"]


def test_list_limit_shows_the_newest_and_says_more_exist(redis_url: str, tmp_path: Path) -> None:
    seed_three(redis_url)
    result = run_cli("--url", redis_url, "list", "--limit", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert table_ids(result.stdout, IDS) == ["newest", "middle"]
    assert re.search(
        r"more match\. Next page: turnstore --url .* list --limit 2 --cursor ", result.stdout
    )


def test_list_shows_the_expiry_of_sessions_with_a_ttl(redis_url: str, tmp_path: Path) -> None:
    seed(redis_url, [("expiring", CONVERSATION[:1], {})], ttl=3600)
    result = run_cli("--url", redis_url, "list", cwd=tmp_path)
    assert re.search(r"^expiring\s.*\sin 1 h$", result.stdout, re.M), result.stdout


def test_list_of_an_empty_store_says_so(redis_url: str, tmp_path: Path) -> None:
    result = run_cli("--url", redis_url, "list", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("No sessions in redis://")


def test_list_does_not_create_a_missing_sqlite_file(sqlite_url: str, tmp_path: Path) -> None:
    result = run_cli("--url", sqlite_url, "list", cwd=tmp_path)
    assert result.returncode == 0
    assert "does not exist yet" in result.stdout
    assert not (tmp_path / "sessions.db").exists()


def test_show_prints_the_conversation_readably(store_url: str, tmp_path: Path) -> None:
    seed_three(store_url)
    result = run_cli("--url", store_url, "show", "newest", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Session newest"
    assert lines[1].startswith("6 items · updated ")
    assert lines[2] == "metadata: user_id=u1"
    assert lines[4:] == [
        "user         What's the weather in Paris?",
        'tool call    get_weather(city="Paris")',
        "tool result  22 °C and sunny",
        "assistant    It's 22 °C and sunny.",
        "",
        "user         Thanks!",
        "assistant    You're welcome.",
    ]


def test_show_json_prints_the_stored_items(store_url: str, tmp_path: Path) -> None:
    seed_three(store_url)
    result = run_cli("--url", store_url, "show", "newest", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == CONVERSATION


def test_show_last_prints_only_the_newest_items(redis_url: str, tmp_path: Path) -> None:
    seed_three(redis_url)
    result = run_cli("--url", redis_url, "show", "newest", "--last", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "(the last 2 of 6 items)" in result.stdout
    assert result.stdout.splitlines()[-2:] == [
        "user         Thanks!",
        "assistant    You're welcome.",
    ]


def test_show_of_a_missing_session_exits_1_with_a_message(store_url: str, tmp_path: Path) -> None:
    seed_three(store_url)
    result = run_cli("--url", store_url, "show", "nobody", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("turnstore: error: no session 'nobody'")
    assert "Traceback" not in result.stderr
