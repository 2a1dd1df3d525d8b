"""The installed `turnstore` console script, run as a user runs it, on SQLite and on Redis;
and `reindex` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.support import CONSOLE_SCRIPT, CONVERSATION, run_console_script, seed


def test_the_console_script_is_installed_beside_the_interpreter() -> None:
    assert CONSOLE_SCRIPT.is_file()


def test_the_console_script_prints_its_version(tmp_path: Path) -> None:
    from turnstore import __version__

    result = run_console_script("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"turnstore {__version__}\n"


def test_the_console_script_lists_and_shows_sessions(store_url: str, tmp_path: Path) -> None:
    seed(store_url, [("first", CONVERSATION[:2], {"user_id": "u1"}), ("second", CONVERSATION, {})])
    listed = run_console_script("--url", store_url, "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    sessions = json.loads(listed.stdout)["sessions"]
    assert [(s["session_id"], s["item_count"]) for s in sessions] == [("second", 6), ("first", 2)]
    shown = run_console_script("--url", store_url, "show", "first", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "What's the weather in Paris?" in shown.stdout
    assert 'get_weather(city="Paris")' in shown.stdout


def test_the_console_script_exits_1_for_an_unknown_session(store_url: str, tmp_path: Path) -> None:
    seed(store_url, [("s1", CONVERSATION[:1], {})])
    result = run_console_script("--url", store_url, "show", "nope", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == f"turnstore: error: no session 'nope' in {store_url}\n"


def test_the_console_script_answers_a_typo_with_exit_2(tmp_path: Path) -> None:
    result = run_console_script("lst", cwd=tmp_path)
    assert result.returncode == 2
    assert "did you mean 'list'?" in result.stderr


def with_index(url: str, keys: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}index_metadata={keys}"


def test_reindex_indexes_sessions_written_before_the_key_was_indexed(
    store_url: str, tmp_path: Path
) -> None:
    seed(
        store_url,
        [(f"s{n}", CONVERSATION[:1], {"user_id": f"u{n % 2}"}) for n in range(5)],
    )
    indexed = with_index(store_url, "user_id")
    result = run_console_script("--url", indexed, "reindex", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"indexed": 5}
    listed = run_console_script(
        "--url", indexed, "list", "--meta", "user_id=u0", "--json", cwd=tmp_path
    )
    assert listed.returncode == 0, listed.stderr
    found = [s["session_id"] for s in json.loads(listed.stdout)["sessions"]]
    assert found == ["s4", "s2", "s0"]


def test_reindex_in_words_then_again_indexes_nothing(store_url: str, tmp_path: Path) -> None:
    seed(store_url, [(f"s{n}", CONVERSATION[:1], {"tenant": "a"}) for n in range(3)])
    indexed = with_index(store_url, "tenant")
    first = run_console_script("--url", indexed, "reindex", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == f"Reindexed 3 sessions in {indexed}."
    again = run_console_script("--url", indexed, "reindex", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == f"Reindexed 0 sessions in {indexed}."


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_reindex_without_index_metadata_exits_1(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url: str = request.getfixturevalue(f"{backend}_url")
    seed(url, [("s1", CONVERSATION[:1], {})])
    result = run_console_script("--url", url, "reindex", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        f"turnstore: error: {url}: this store keeps no metadata index to rebuild (name the "
        "keys to index in the URL, e.g. ?index_metadata=user_id,tenant)\n"
    )
