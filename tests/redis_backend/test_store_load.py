"""Load through one store (SPEC section 5): many concurrent sessions share its pool; callers
beyond the pool wait for a connection instead of failing, on every topology."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.backends import unique_id
from turnstore import RedisSession, RedisStore
from turnstore.conformance.items import assistant, user

SESSIONS = 1_000
TURNS = 10


async def run_all(workers: list[Callable[[], Awaitable[None]]]) -> list[BaseException]:
    """Run every worker concurrently; the errors they raised."""
    results = await asyncio.gather(*(worker() for worker in workers), return_exceptions=True)
    return [r for r in results if isinstance(r, BaseException)]


def describe(errors: list[BaseException]) -> str:
    kinds = sorted({f"{type(e).__name__}: {e}" for e in errors})
    return f"{len(errors)} errors, e.g. {kinds[:3]}"


def turn_items(session_id: str, n: int) -> list[dict[str, Any]]:
    return [user(f"{session_id} asks {n}"), assistant(f"answer {n}", f"msg_{n}")]


async def converse(session: RedisSession, turns: int) -> None:
    """An agent's turns: read the history, then append the turn."""
    for n in range(turns):
        history = await session.get_items()
        assert len(history) == 2 * n, f"{session.session_id} saw {len(history)} items"
        await session.add_items(turn_items(session.session_id, n))


async def test_a_thousand_concurrent_sessions_share_one_default_store_without_errors(
    redis_server: Any,
) -> None:
    # A default store (at most 64 connections for sessions); the prefix only keeps this
    # test's keys apart, the client name lets the server count this store's connections.
    name = unique_id("load")
    store = RedisStore.from_url(f"{redis_server.url}?client_name={name}", key_prefix=name)
    try:
        sessions = [store.session(f"conversation-{n:04d}") for n in range(SESSIONS)]
        errors = await run_all([lambda s=s: converse(s, TURNS) for s in sessions])
        assert not errors, describe(errors)

        histories = await asyncio.gather(*(s.get_items() for s in sessions))
        for session, history in zip(sessions, histories, strict=True):
            expected = [item for n in range(TURNS) for item in turn_items(session.session_id, n)]
            assert history == expected, session.session_id
        assert await store.count_sessions() == SESSIONS

        async with aioredis.Redis.from_url(redis_server.url) as admin:
            named = [c for c in await admin.client_list() if c.get("name") == name]
        # The store needed many of its 64 connections, and none beyond them: the other
        # callers waited.
        assert 32 <= len(named) <= 64
    finally:
        await store.close()


@pytest.mark.parametrize("topology", ["redis", "redis-sentinel", "redis-cluster"])
async def test_callers_beyond_a_small_pool_wait_instead_of_failing(
    request: pytest.FixtureRequest, topology: str
) -> None:
    fixture = {"redis": "redis_server", "redis-sentinel": "redis_sentinel"}
    url: str = request.getfixturevalue(fixture.get(topology, "redis_cluster")).url
    store = RedisStore.from_url(url, max_connections=2, key_prefix=unique_id("pool"))
    try:
        sessions = [store.session(f"s{n}") for n in range(300)]
        errors = await run_all([lambda s=s: converse(s, 2) for s in sessions])
        assert not errors, describe(errors)
        assert await store.count_sessions() == len(sessions)
    finally:
        await store.close()
