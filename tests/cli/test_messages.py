"""Clear messages: each failure is one line naming the problem and the URL, exit 1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.support import CONVERSATION, run_cli, seed
from tests.servers import RedisServer, TLSFiles, make_tls_files, start_redis, start_redis_tls

PASSWORD = "s3cret-pw"


@pytest.fixture(scope="module")
def password_server() -> Iterator[RedisServer]:
    server = start_redis("--requirepass", PASSWORD)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(tls_files: TLSFiles) -> Iterator[RedisServer]:
    server = start_redis_tls(tls=tls_files)
    try:
        yield server
    finally:
        server.stop()


def one_line_error(result: object) -> str:
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert result.returncode == 1, stderr  # type: ignore[attr-defined]
    assert len(stderr.splitlines()) == 1, stderr
    assert "Traceback" not in stderr
    return stderr


@pytest.mark.parametrize("protocol", ["2", "3"])
def test_a_server_asking_for_a_password(
    password_server: RedisServer, tmp_path: Path, protocol: str
) -> None:
    url = f"redis://127.0.0.1:{password_server.port}/0?protocol={protocol}"
    stderr = one_line_error(run_cli("--url", url, "list", cwd=tmp_path))
    assert stderr == (
        f"turnstore: error: {url}: the server requires a password; put it in the URL "
        "(redis://:PASSWORD@host:port/db or redis://USER:PASSWORD@host:port/db)\n"
    )


def test_a_wrong_password(password_server: RedisServer, tmp_path: Path) -> None:
    url = f"redis://:wrong-{PASSWORD}@127.0.0.1:{password_server.port}/0"
    stderr = one_line_error(run_cli("--url", url, "list", cwd=tmp_path))
    assert stderr == (
        f"turnstore: error: redis://:***@127.0.0.1:{password_server.port}/0: "
        "the server refused the user name or password\n"
    )
    assert PASSWORD not in stderr


def test_the_right_password_works(password_server: RedisServer, tmp_path: Path) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{password_server.port}/0"
    result = run_cli("--url", url, "list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_plain_redis_against_a_tls_server(tls_server: RedisServer, tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{tls_server.port}/0"
    stderr = one_line_error(run_cli("--url", url, "--timeout", "5", "list", cwd=tmp_path))
    assert stderr.startswith(f"turnstore: error: {url}: ")


def test_a_tls_certificate_that_is_not_trusted(tls_server: RedisServer, tmp_path: Path) -> None:
    url = f"rediss://127.0.0.1:{tls_server.port}/0"  # no ssl_ca_certs: the test CA is unknown
    stderr = one_line_error(run_cli("--url", url, "list", cwd=tmp_path))
    assert stderr.startswith(f"turnstore: error: {url}: the TLS handshake failed (")
    assert "CERTIFICATE_VERIFY_FAILED" in stderr or "certificate verify failed" in stderr


@pytest.mark.parametrize("command", [["list"], ["demo"], ["import", "-"], ["delete", "s1"]])
def test_a_missing_sqlite_directory(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "missing" / "dir" / "x.db"
    result = run_cli("--url", f"sqlite:///{path}", *command, cwd=tmp_path, input="")
    if command == ["list"]:  # reading nothing from a file that is not there
        assert result.returncode == 0
        assert f"{path} does not exist yet" in result.stdout
    else:
        stderr = one_line_error(result)
        assert str(path.parent) in stderr
    assert not (tmp_path / "missing").exists()


def test_an_unknown_session_on_sqlite(sqlite_url: str, tmp_path: Path) -> None:
    seed(sqlite_url, [("s1", CONVERSATION, {})])
    stderr = one_line_error(run_cli("--url", sqlite_url, "show", "nope", cwd=tmp_path))
    assert stderr == f"turnstore: error: no session 'nope' in {sqlite_url}\n"


def test_an_unknown_session_on_redis(redis_url: str, tmp_path: Path) -> None:
    stderr = one_line_error(run_cli("--url", redis_url, "delete", "nope", cwd=tmp_path))
    assert stderr == f"turnstore: error: no session 'nope' in {redis_url}\n"
