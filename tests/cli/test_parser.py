"""A forgiving parser: the command's own usage, "did you mean", hidden commands, completion."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.support import CONVERSATION, cli_env, run_cli, seed


def test_a_mistyped_command_is_answered_with_a_suggestion(tmp_path: Path) -> None:
    result = run_cli("lst", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: turnstore [-h]")
    assert "turnstore: error: unknown command 'lst'; did you mean 'list'?" in result.stderr


def test_hidden_commands_are_never_offered(tmp_path: Path) -> None:
    result = run_cli("dem", cwd=tmp_path)
    assert "did you mean 'demo'?" in result.stderr
    assert "demo-resume" not in result.stderr
    assert "complete-ids" not in result.stderr
    listing = run_cli("--help", cwd=tmp_path).stdout
    assert "demo-resume" not in listing and "complete-ids" not in listing


def test_a_mistyped_option_gets_the_commands_usage_and_a_suggestion(tmp_path: Path) -> None:
    result = run_cli("list", "--lmit", "3", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: turnstore list [-h]")
    assert (
        "turnstore list: error: unrecognized arguments: --lmit 3; did you mean '--limit'?"
        in result.stderr
    )


def test_a_bad_value_gets_the_commands_usage(tmp_path: Path) -> None:
    result = run_cli("delete", "--older-than", "soon", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: turnstore delete [-h]")
    assert "expected an age like 30d" in result.stderr


def test_a_mistyped_choice_is_suggested(tmp_path: Path) -> None:
    result = run_cli("migrate", "--from-layout", "sdkk", "sqlite://", "sqlite://", cwd=tmp_path)
    assert result.returncode == 2
    assert "invalid choice: 'sdkk'; did you mean 'sdk'?" in result.stderr


def test_global_options_work_after_the_command(redis_url: str, tmp_path: Path) -> None:
    seed(redis_url, [("s1", CONVERSATION, {})])
    result = run_cli("list", "--url", redis_url, "--timeout", "5", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"session_id": "s1"' in result.stdout


# -- completion --------------------------------------------------------------------------------

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


def complete(line: str, cwd: Path, url: str | None = None) -> list[str]:
    """What the bash completion script offers for the words of `line` (the last one partial)."""
    script = run_cli("completion", "bash", cwd=cwd).stdout
    words = line.split(" ")
    if url is not None:
        words[1:1] = ["--url", url]
    driver = (
        f"{script}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        "_turnstore; printf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    # The script runs the CLI as it was typed: put this interpreter's `turnstore` first.
    env = cli_env({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    result = subprocess.run(
        ["bash", "-c", driver], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [word for word in result.stdout.splitlines() if word]


@needs_bash
def test_bash_completes_commands(tmp_path: Path) -> None:
    assert complete("turnstore s", tmp_path) == ["show", "stats"]


@needs_bash
def test_bash_completes_a_commands_options(tmp_path: Path) -> None:
    assert complete("turnstore delete --d", tmp_path) == ["--dry-run"]


@needs_bash
def test_bash_completes_session_ids_from_sqlite(sqlite_url: str, tmp_path: Path) -> None:
    seed(sqlite_url, [("alpha-1", CONVERSATION, {}), ("alpha-2", CONVERSATION, {})])
    seed(sqlite_url, [("beta", CONVERSATION, {})])
    assert sorted(complete("turnstore show al", tmp_path, sqlite_url)) == ["alpha-1", "alpha-2"]


@needs_bash
def test_bash_completes_session_ids_from_redis(redis_url: str, tmp_path: Path) -> None:
    seed(redis_url, [("alpha-1", CONVERSATION, {}), ("beta", CONVERSATION, {})])
    assert complete("turnstore delete al", tmp_path, redis_url) == ["alpha-1"]


def test_zsh_script_loads_bash_completion(tmp_path: Path) -> None:
    result = run_cli("completion", "zsh", cwd=tmp_path)
    assert result.returncode == 0
    assert "bashcompinit" in result.stdout
    assert "complete -F _turnstore turnstore" in result.stdout
