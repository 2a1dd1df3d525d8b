"""Stores for the CLI tests: a fresh SQLite file, or a fresh key prefix on the test Redis."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.cli.support import sqlite_url_for
from tests.servers import RedisServer


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return sqlite_url_for(tmp_path / "sessions.db")


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    # A prefix of its own: listing sees only this test's sessions.
    return f"{redis_server.url}?key_prefix=cli-{uuid.uuid4().hex[:10]}"


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url
