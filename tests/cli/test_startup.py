"""Start-up: the commands that do not run an agent never import the SDK or an unused backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.support import CONVERSATION, cli_env, seed, sqlite_url_for

#: Runs the CLI in a fresh interpreter and reports which of these packages it imported.
PROBE = """
import json, sys
from turnstore.cli import main
code = main(sys.argv[1:])
loaded = sorted({name.split(".")[0] for name in sys.modules} & {"agents", "redis", "openai"})
backends = sorted(n for n in ("turnstore.sqlite", "turnstore.redis") if n in sys.modules)
sys.stdout.write("\\n" + json.dumps({"code": code, "loaded": loaded, "backends": backends}))
"""

COMMANDS = [
    ["--help"],
    ["--version"],
    ["list"],
    ["show", "s1"],
    ["stats"],
    ["delete", "gone"],
    ["purge"],
]
#: The exit code each command must end with (`delete gone`: no such session).
EXPECTED_CODE = {"delete": 1}


def probe(url: str, args: list[str], cwd: Path) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "--url", url, *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    report: dict[str, object] = json.loads(result.stdout.rsplit("\n", 1)[-1])
    return report


@pytest.fixture(scope="module")
def seeded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = sqlite_url_for(tmp_path_factory.mktemp("startup") / "s.db")
    seed(url, [("s1", CONVERSATION, {})])
    return url


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_sqlite_commands_import_neither_the_sdk_nor_redis(
    seeded_sqlite: str, args: list[str], tmp_path: Path
) -> None:
    report = probe(seeded_sqlite, args, tmp_path)
    assert report["code"] == EXPECTED_CODE.get(args[0], 0), report
    assert report["loaded"] == []
    assert "turnstore.redis" not in report["backends"]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_redis_commands_import_neither_the_sdk_nor_sqlite(
    redis_url: str, args: list[str], tmp_path: Path
) -> None:
    seed(redis_url, [("s1", CONVERSATION, {})])
    report = probe(redis_url, args, tmp_path)
    assert report["code"] == EXPECTED_CODE.get(args[0], 0), report
    assert "agents" not in report["loaded"]
    assert "turnstore.sqlite" not in report["backends"]


def test_the_probe_sees_the_sdk_when_a_command_imports_it(tmp_path: Path) -> None:
    # The same probe after the demo's module is loaded: the check above can fail.
    result = subprocess.run(
        [sys.executable, "-c", "import turnstore.cli.demo\n" + PROBE, "--version"],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "agents" in json.loads(result.stdout.rsplit("\n", 1)[-1])["loaded"]
