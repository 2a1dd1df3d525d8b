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


READERS_AND_BULK = [
    ["list"],
    ["show", "x"],
    ["stats"],
    ["export"],
    ["purge"],
    ["purge", "--dry-run"],
    ["delete", "--meta", "k=v"],
    ["delete", "--older-than", "30d"],
    ["delete", "x"],
    ["reindex"],
]


@pytest.mark.parametrize("command", READERS_AND_BULK, ids=" ".join)
def test_a_missing_sqlite_directory_is_named_by_every_command_that_opens_the_file(
    tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "missing" / "dir" / "x.db"
    result = run_cli("--url", f"sqlite:///{path}?index_metadata=k", *command, cwd=tmp_path)
    stderr = one_line_error(result)
    assert stderr == (
        f"turnstore: error: cannot open {path}: the directory {path.parent} does not exist\n"
    )
    assert result.stdout == ""
    assert not (tmp_path / "missing").exists()


def test_demo_in_a_missing_sqlite_directory_says_it_cannot_create_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "missing" / "dir" / "x.db"
    stderr = one_line_error(run_cli("--url", f"sqlite:///{path}", "demo", cwd=tmp_path))
    assert stderr == (
        f"turnstore: error: cannot create {path}: the directory {path.parent} does not exist\n"
    )
    assert not (tmp_path / "missing").exists()


def test_import_into_a_missing_sqlite_directory_names_it(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "dir" / "x.db"
    result = run_cli("--url", f"sqlite:///{path}", "import", "-", cwd=tmp_path, input="")
    assert one_line_error(result) == (
        f"turnstore: error: cannot import into {path}: the directory {path.parent} does not exist\n"
    )
    assert not (tmp_path / "missing").exists()


def test_list_of_a_missing_file_in_an_existing_directory_is_an_empty_store(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.db"
    result = run_cli("--url", f"sqlite:///{path}", "list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"No sessions: {path} does not exist yet.\n"
    assert not path.exists()


def test_an_unknown_session_on_sqlite(sqlite_url: str, tmp_path: Path) -> None:
    seed(sqlite_url, [("s1", CONVERSATION, {})])
    stderr = one_line_error(run_cli("--url", sqlite_url, "show", "nope", cwd=tmp_path))
    assert stderr == f"turnstore: error: no session 'nope' in {sqlite_url}\n"


def test_an_unknown_session_on_redis(redis_url: str, tmp_path: Path) -> None:
    stderr = one_line_error(run_cli("--url", redis_url, "delete", "nope", cwd=tmp_path))
    assert stderr == f"turnstore: error: no session 'nope' in {redis_url}\n"
