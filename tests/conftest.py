"""Fixtures shared by every test: real redis-server topologies and the backends under test.

Servers start once per test session on free loopback ports and stop at the end (and, should
the run be killed, by themselves: see servers.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel

from tests.backends import Backend, MemoryBackend, RedisBackend, SQLiteBackend
from tests.servers import (
    ClusterTopology,
    RedisServer,
    SentinelTopology,
    start_cluster,
    start_redis,
    start_sentinel,
)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[ClusterTopology]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[SentinelTopology]:
    topology = start_sentinel()
    try:
        yield topology
    finally:
        topology.stop()


def cluster_client(cluster: ClusterTopology) -> RedisCluster:
    return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in cluster.startup_nodes])


def sentinel_client(topology: SentinelTopology) -> aioredis.Redis:
    return Sentinel(topology.sentinels).master_for(topology.service_name)  # type: ignore[no-any-return]


# "redis" and "redis-sentinel" are stores opened by URL (their sessions send on the store's
# direct lane); "redis-injected" and "redis-cluster" run over redis-py clients passed in.
BACKENDS = [
    "redis",
    "redis-injected",
    "redis-cluster",
    "redis-sentinel",
    "sqlite-file",
    "sqlite-memory",
    "memory",
]


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    kind: str = request.param
    made: Backend
    if kind in ("redis", "redis-injected"):
        server: RedisServer = request.getfixturevalue("redis_server")
        made = RedisBackend(
            lambda: aioredis.Redis.from_url(server.url),
            kind,
            server.url,
            injected=kind == "redis-injected",
        )
    elif kind == "redis-cluster":
        cluster: ClusterTopology = request.getfixturevalue("redis_cluster")
        made = RedisBackend(lambda: cluster_client(cluster), kind, cluster.url, injected=True)
    elif kind == "redis-sentinel":
        topology: SentinelTopology = request.getfixturevalue("redis_sentinel")
        made = RedisBackend(lambda: sentinel_client(topology), kind, topology.url)
    elif kind == "sqlite-file":
        made = SQLiteBackend(str(tmp_path / "sessions.db"), kind)
    elif kind == "sqlite-memory":
        made = SQLiteBackend(":memory:", kind)
    elif kind == "memory":
        made = MemoryBackend(kind)
    else:  # pragma: no cover
        raise AssertionError(kind)
    try:
        yield made
    finally:
        await made.aclose()
