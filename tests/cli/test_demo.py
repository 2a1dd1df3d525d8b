"""`demo`: a scripted agent through the real Runner, remembered by a second process."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.support import run_cli, sqlite_url_for, stored_items
from tests.servers import RedisServer, start_redis

SESSION = "demo-under-test"
PASSWORD = "hunter2-demo-secret"


class DemoRun:
    def __init__(self, url: str, cwd: Path, result: subprocess.CompletedProcess[str]) -> None:
        self.url = url
        self.cwd = cwd
        self.result = result


@pytest.fixture(scope="module")
def sqlite_demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    cwd = tmp_path_factory.mktemp("demo-sqlite")
    url = sqlite_url_for(cwd / "demo.db")
    return DemoRun(url, cwd, run_cli("--url", url, "demo", "--session", SESSION, cwd=cwd))


@pytest.fixture(scope="module")
def redis_demo(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    cwd = tmp_path_factory.mktemp("demo-redis")
    url = f"{redis_server.url}?key_prefix=cli-demo"
    return DemoRun(url, cwd, run_cli("--url", url, "demo", "--session", SESSION, cwd=cwd))


@pytest.fixture(params=["sqlite", "redis"])
def demo(request: pytest.FixtureRequest) -> DemoRun:
    run: DemoRun = request.getfixturevalue(f"{request.param}_demo")
    return run


@pytest.fixture(scope="module")
def redis_with_password() -> Iterator[RedisServer]:
    server = start_redis("--requirepass", PASSWORD)
    try:
        yield server
    finally:
        server.stop()


def test_demo_succeeds_without_noise_on_stderr(demo: DemoRun) -> None:
    assert demo.result.returncode == 0, demo.result.stderr
    assert demo.result.stderr == ""


def test_demo_second_process_saw_the_first_processs_history(demo: DemoRun) -> None:
    assert "the model saw 8 earlier items" in demo.result.stdout
    pids = re.findall(r"\(pid (\d+)\)", demo.result.stdout)
    assert len(set(pids)) == 2  # two different processes


def test_demo_stores_all_three_turns(demo: DemoRun) -> None:
    items = stored_items(demo.url, SESSION)
    assert [item.get("role") for item in items].count("user") == 3
    assert len(items) == 10
    assert items[-1]["content"][0]["text"] == (
        "You asked about Paris (22 °C and sunny) and Tokyo (18 °C with light rain)."
    )


def test_demo_prints_the_conversation_readably(demo: DemoRun) -> None:
    out = demo.result.stdout
    assert re.search(r"^\s+user\s+What's the weather in Paris\?$", out, re.M)
    assert re.search(r'^\s+tool call\s+get_weather\(city="Tokyo"\)$', out, re.M)
    assert re.search(r"^\s+tool result\s+18 °C with light rain$", out, re.M)
    assert re.search(r"^\s+assistant\s+It's 22 °C and sunny in Paris\.$", out, re.M)


def test_demo_prints_no_colours_when_not_on_a_terminal(demo: DemoRun) -> None:
    assert "\x1b[" not in demo.result.stdout


def test_demo_on_sqlite_names_the_database_file_and_how_to_look_again(
    sqlite_demo: DemoRun,
) -> None:
    out = sqlite_demo.result.stdout
    assert f"file {sqlite_demo.cwd / 'demo.db'}" in out
    assert f"turnstore --url {sqlite_demo.url} show {SESSION}" in out


def test_demo_on_redis_says_how_to_look_again(redis_demo: DemoRun) -> None:
    assert f"turnstore --url '{redis_demo.url}' show {SESSION}" in redis_demo.result.stdout


def test_demo_never_prints_the_password_of_its_store(
    redis_with_password: RedisServer, tmp_path: Path
) -> None:
    port = redis_with_password.port
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    result = run_cli("--url", url, "demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"redis://:***@127.0.0.1:{port}/0" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr


def test_demo_refuses_an_in_memory_store_as_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("--url", "sqlite://", "demo", cwd=tmp_path)
    assert result.returncode == 2
    assert "in-memory" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_demo_run_twice_on_one_session_remembers_both_runs(
    backend: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    url = (
        sqlite_url_for(tmp_path / "twice.db")
        if backend == "sqlite"
        else f"{redis_server.url}?key_prefix=cli-twice-{tmp_path.name[-12:]}"
    )
    first = run_cli("--url", url, "demo", "--session", "again", cwd=tmp_path)
    second = run_cli("--url", url, "demo", "--session", "again", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["remembered"] is True
    assert report["seen_by_second"] == report["stored_by_first"] == 18
    assert report["item_count"] == 20
    assert "Paris (22 °C and sunny), Tokyo" in report["answer"]
