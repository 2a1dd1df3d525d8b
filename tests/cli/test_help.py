"""`--help` of the program and of every command."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.support import run_cli


@pytest.mark.parametrize("command", [[], ["demo"], ["list"], ["show"]], ids=lambda c: c or "top")
def test_help_exits_0_and_shows_usage(command: list[str], tmp_path: Path) -> None:
    result = run_cli(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: turnstore {' '.join(command)}".rstrip())
    assert "--url URL" in result.stdout
    assert result.stderr == ""


def test_help_lists_the_commands_but_not_the_demos_internal_one(tmp_path: Path) -> None:
    result = run_cli("--help", cwd=tmp_path)
    for command in ("demo", "list", "show"):
        assert f"\n    {command} " in result.stdout
    assert "demo-resume" not in result.stdout
