"""A forgiving parser: the command's own usage, "did you mean", hidden commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.support import CONVERSATION, run_cli, seed


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


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        (["--tiemout", "3", "list"], "--timeout"),
        (["--urll", "sqlite:///x.db", "list"], "--url"),
    ],
)
def test_a_mistyped_option_before_the_command_is_suggested(
    tmp_path: Path, typed: list[str], meant: str
) -> None:
    result = run_cli(*typed, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: turnstore [-h]")
    assert result.stderr.endswith(
        f"turnstore: error: unrecognized option {typed[0]!r}; did you mean {meant!r}?\n"
    )
    assert "unknown command" not in result.stderr


def test_an_option_before_the_command_that_is_like_none_is_named(tmp_path: Path) -> None:
    result = run_cli("--zzz", "3", "list", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.endswith("turnstore: error: unrecognized option '--zzz'\n")


def test_an_abbreviated_global_option_still_works(tmp_path: Path) -> None:
    result = run_cli("--time", "3", "list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
