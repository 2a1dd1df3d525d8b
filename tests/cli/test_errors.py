"""Exit codes and messages of what goes wrong: 1 operational, 2 usage, never a password."""

from __future__ import annotations

from pathlib import Path

from tests.cli.support import run_cli

PASSWORD = "hunter2"


def test_unknown_url_scheme_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("--url", "nosuchdb://host/0", "list", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown URL scheme 'nosuchdb'" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_url_option_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("--url", "redis://127.0.0.1:1/0?colour=blue", "list", cwd=tmp_path)
    assert result.returncode == 2
    assert "colour" in result.stderr
    assert "Traceback" not in result.stderr


def test_meta_without_equals_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("list", "--meta", "user_id", cwd=tmp_path)
    assert result.returncode == 2
    assert "expected KEY=VALUE" in result.stderr


def test_limit_below_one_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("list", "--limit", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "--limit" in result.stderr


def test_missing_command_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(cwd=tmp_path)
    assert result.returncode == 2
    assert "usage: turnstore" in result.stderr


def test_unreachable_redis_exits_1_and_never_shows_the_password(tmp_path: Path) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:1/0"
    result = run_cli("--url", url, "list", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("turnstore: error: redis://:***@127.0.0.1:1/0: ")
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stdout + result.stderr


def test_password_in_a_bad_url_is_never_shown(tmp_path: Path) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:1/0?colour=blue"
    result = run_cli("--url", url, "show", "s1", cwd=tmp_path)
    assert result.returncode == 2
    assert PASSWORD not in result.stdout + result.stderr


def test_unopenable_sqlite_file_exits_1_without_traceback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/no/such/dir/x.db"
    result = run_cli("--url", url, "demo", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        f"turnstore: error: cannot create {tmp_path}/no/such/dir/x.db: "
        f"the directory {tmp_path}/no/such/dir does not exist\n"
    )
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
