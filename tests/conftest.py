"""Fixtures shared by every test: real redis-server topologies and the backends under test.

Servers start once per test session on free loopback ports and stop at the end (and, should
the run be killed, by themselves: see servers.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.backends import Backend, RedisBackend, SQLiteBackend
from tests.servers import RedisServer, start_redis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


BACKENDS = ["redis", "sqlite-file", "sqlite-memory"]


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    kind: str = request.param
    made: Backend
    if kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        made = RedisBackend(lambda: aioredis.Redis.from_url(server.url), kind, server.url)
    elif kind == "sqlite-file":
        made = SQLiteBackend(str(tmp_path / "sessions.db"), kind)
    elif kind == "sqlite-memory":
        made = SQLiteBackend(":memory:", kind)
    else:  # pragma: no cover
        raise AssertionError(kind)
    try:
        yield made
    finally:
        await made.aclose()
