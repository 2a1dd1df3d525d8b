"""An injected client's lane: a few of its pool's connections, shared, and gone with it."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest
import redis.asyncio as aioredis

from tests.backends import unique_id
from tests.servers import RedisServer
from turnstore import RedisSession, RedisStore
from turnstore.conformance.items import turn


async def named_connections(server: RedisServer, name: str) -> int:
    async with aioredis.Redis.from_url(server.url) as admin:
        return len([c for c in await admin.client_list() if c.get("name") == name])


async def test_the_lane_takes_at_most_a_quarter_of_a_small_pool_and_never_blocks_it(
    redis_server: RedisServer,
) -> None:
    name = unique_id("inj")
    pool = aioredis.BlockingConnectionPool.from_url(
        redis_server.url, max_connections=8, timeout=5, client_name=name
    )
    client = aioredis.Redis.from_pool(pool)
    try:
        store = RedisStore(client, key_prefix=unique_id("p"))
        sessions = [store.session(unique_id()) for _ in range(40)]
        await asyncio.gather(*(s.add_items(turn(0)) for s in sessions))
        # The pool's other callers still get connections while the lane holds its share.
        assert await asyncio.wait_for(client.ping(), 5) is True
        assert await named_connections(redis_server, name) <= 8
        histories = await asyncio.gather(*(s.get_items() for s in sessions))
        assert all(history == turn(0) for history in histories)
    finally:
        await client.aclose()


async def test_sessions_of_one_client_share_its_lane(redis_server: RedisServer) -> None:
    name = unique_id("inj")
    client = aioredis.Redis.from_url(redis_server.url, client_name=name)
    try:
        sessions = [RedisSession(unique_id(), client=client) for _ in range(50)]
        for session in sessions:  # one at a time: one lane connection serves them all
            await session.add_items(turn(1))
        assert await named_connections(redis_server, name) <= 2
    finally:
        await client.aclose()


async def test_a_dropped_client_leaves_no_unclosed_client_report(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = aioredis.Redis.from_url(redis_server.url)
    session = RedisSession(unique_id(), client=client)
    await asyncio.gather(*(session.get_items() for _ in range(4)))
    await client.aclose()
    del client, session
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        gc.collect()
        await asyncio.sleep(0)
    # This client is a standalone one: a report of an unclosed ClusterNode is another test's
    # garbage collected here (redis-py before 8.0 orphans a cluster client's old ClusterNode
    # objects when it reloads the topology, redis-py #4057), not this client's.
    reports = [
        record.getMessage()
        for record in caplog.records
        if "Unclosed" in record.getMessage() and "ClusterNode" not in record.getMessage()
    ]
    assert reports == []
