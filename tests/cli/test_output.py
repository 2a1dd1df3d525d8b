"""How output looks: colours only on a terminal, tables without rich, a light library import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.cli.support import CONVERSATION, cli_env, run_cli, run_cli_on_tty, seed


def test_importing_the_library_imports_neither_the_cli_nor_rich(tmp_path: Path) -> None:
    code = (
        "import sys, turnstore\n"
        "loaded = [m for m in sys.modules if m == 'rich' or m.startswith('turnstore.cli')]\n"
        "print(loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.stdout.strip() == "[]", result.stderr


def test_show_uses_colours_on_a_terminal(redis_url: str, tmp_path: Path) -> None:
    seed(redis_url, [("s1", CONVERSATION, {})])
    shown = run_cli_on_tty("--url", redis_url, "show", "s1", cwd=tmp_path)
    assert "\x1b[1;36muser" in shown
    assert "What's the weather in Paris?" in shown


def test_no_color_turns_colours_off_on_a_terminal(redis_url: str, tmp_path: Path) -> None:
    seed(redis_url, [("s1", CONVERSATION, {})])
    shown = run_cli_on_tty("--url", redis_url, "show", "s1", cwd=tmp_path, env={"NO_COLOR": "1"})
    assert "\x1b[" not in shown
    assert "What's the weather in Paris?" in shown


def test_list_falls_back_to_a_plain_table_without_rich(redis_url: str, tmp_path: Path) -> None:
    seed(redis_url, [("s1", CONVERSATION, {"user_id": "u1"})])
    blocker = tmp_path / "no-rich"
    (blocker / "rich").mkdir(parents=True)
    (blocker / "rich" / "__init__.py").write_text("raise ImportError('rich is blocked')\n")
    env = cli_env({"PYTHONPATH": str(blocker)})
    result = run_cli("--url", redis_url, "list", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "SESSION  ITEMS  UPDATED   CREATED (UTC)     EXPIRES  METADATA"
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split()[:2] == ["s1", "6"]
    assert lines[2].endswith("user_id=u1")
