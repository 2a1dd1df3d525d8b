"""The Redis session lock when a reply is lost (SPEC section 2, `lock()`; issue 6).

A `DroppingProxy` lets the server take or release the lock and drops the reply once. The lock
must behave as if the reply had arrived: the holder gets the lock, leaving it raises nothing,
and the next worker is not kept waiting by an orphaned lease.

Taking the lock is a token-compared script (a holder that already has it gets it again) and
every lock script is resent after a lost reply; a release that finds its own work done while
the lease still held is not reported as a lost lock.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tests.backends import unique_id
from tests.faults import DroppingProxy
from tests.servers import RedisServer
from turnstore import RedisSession
from turnstore.redis import scripts

DRIVER_RETRIES = pytest.mark.parametrize(
    "driver_retries", [3, 0], ids=["redis-py-retries", "library-retries"]
)


def drop_once(is_target: Callable[[bytes], bool]) -> Callable[[bytes], bool]:
    left = [1]

    def should_drop(request: bytes) -> bool:
        if left[0] and is_target(request):
            left[0] -= 1
            return True
        return False

    return should_drop


def is_lock_take(request: bytes) -> bool:
    return scripts.LOCK_ACQUIRE.sha.encode() in request


def is_lock_release(request: bytes) -> bool:
    return scripts.LOCK_RELEASE.sha.encode() in request


@pytest.fixture
async def direct(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    for script in (scripts.LOCK_ACQUIRE, scripts.LOCK_RELEASE):  # so they go by EVALSHA
        await client.script_load(script.source)
    yield client
    await client.aclose()


async def through_proxy(
    server: RedisServer, should_drop: Callable[[bytes], bool], driver_retries: int
) -> tuple[DroppingProxy, aioredis.Redis]:
    proxy = DroppingProxy(server.port, should_drop=should_drop)
    return proxy, aioredis.Redis.from_url(proxy.url, retry=Retry(NoBackoff(), driver_retries))


async def next_worker_waits(session_id: str, client: aioredis.Redis) -> float:
    started = time.monotonic()
    async with RedisSession(session_id, client=client).lock(timeout=2):
        return time.monotonic() - started


@DRIVER_RETRIES
async def test_a_lost_acquire_reply_still_gives_the_holder_the_lock(
    redis_server: RedisServer, direct: aioredis.Redis, driver_retries: int
) -> None:
    proxy, client = await through_proxy(redis_server, drop_once(is_lock_take), driver_retries)
    session_id = unique_id()
    try:
        async with RedisSession(session_id, client=client).lock(timeout=0.5, lease=5):
            assert proxy.dropped == 1
        assert await next_worker_waits(session_id, direct) < 0.5
    finally:
        await client.aclose()
        proxy.close()


@DRIVER_RETRIES
async def test_a_lost_release_reply_is_not_reported_as_a_lost_lock(
    redis_server: RedisServer, direct: aioredis.Redis, driver_retries: int
) -> None:
    proxy, client = await through_proxy(redis_server, drop_once(is_lock_release), driver_retries)
    session_id = unique_id()
    try:
        async with RedisSession(session_id, client=client).lock(timeout=0.5, lease=5):
            pass
        assert proxy.dropped == 1
        assert await next_worker_waits(session_id, direct) < 0.5
    finally:
        await client.aclose()
        proxy.close()
