"""Listing at scale on Redis (issue 13): a page, a count and an indexed page cost one script
per server whatever the number of sessions; expired sessions' index entries are cleaned up by
later writes, without `purge_expired`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.backends import unique_id
from tests.servers import ClusterTopology, RedisServer, start_redis
from turnstore import RedisStore
from turnstore.backend import SessionWrite
from turnstore.items import encode_item


@pytest.fixture
def server() -> Iterator[RedisServer]:
    # A server of its own: the test counts the commands it runs.
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


def scripts_run(client: redis.Redis) -> int:
    """Scripts the server ran since its statistics were reset (EVALSHA and EVAL, both
    forms; an EVALSHA answered NOSCRIPT did not run)."""
    stats: dict[str, Any] = client.info("commandstats")
    names = ("cmdstat_evalsha", "cmdstat_evalsha_ro", "cmdstat_eval", "cmdstat_eval_ro")
    return sum(
        int(stats[name]["calls"]) - int(stats[name]["failed_calls"])
        for name in names
        if name in stats
    )


def commands_run(client: redis.Redis) -> dict[str, int]:
    stats: dict[str, Any] = client.info("commandstats")
    return {name: int(value["calls"]) for name, value in stats.items()}


async def fill(store: RedisStore, count: int, *, prefix: str, ttl: float | None = None) -> None:
    """`count` sessions of one item, user_id metadata, written in batches of 500."""
    item = encode_item({"role": "user", "content": "hi"})
    writes = [
        SessionWrite(
            session_id=f"{prefix}-{n:06d}",
            encoded=[item],
            metadata={"user_id": f"u{n % 10}"},
            ttl=ttl,
        )
        for n in range(count)
    ]
    for start in range(0, count, 500):
        await store.replace_sessions(writes[start : start + 500])


async def test_a_page_an_indexed_page_and_a_count_are_one_script_each_on_one_server(
    server: RedisServer,
) -> None:
    store = RedisStore.from_url(server.url, index_metadata=("user_id",))
    try:
        await fill(store, 3000, prefix="s")
        await store.list_sessions(limit=1, metadata={"user_id": "u1"})  # scripts loaded
        await store.count_sessions()
        with server.client() as client:
            for call in (
                lambda: store.list_sessions(limit=100),
                lambda: store.list_sessions(limit=20, metadata={"user_id": "u7"}),
                lambda: store.count_sessions(),
            ):
                client.config_resetstat()
                await call()
                assert scripts_run(client) == 1, commands_run(client)
    finally:
        await store.close()


async def test_a_cluster_page_is_at_most_two_scripts_per_node(
    redis_cluster: ClusterTopology,
) -> None:
    prefix = unique_id("pages")
    store = RedisStore.from_url(redis_cluster.url, key_prefix=prefix, index_metadata=("user_id",))
    try:
        await fill(store, 2000, prefix="s")
        expected = await store.list_sessions(limit=100)
        for node in redis_cluster.nodes:
            with node.client() as client:
                client.config_resetstat()
        page = await store.list_sessions(limit=100)
        indexed = await store.list_sessions(limit=20, metadata={"user_id": "u7"})
        for node in redis_cluster.nodes:
            with node.client() as client:
                # Per page: the merge on every node, then the winners' details.
                assert scripts_run(client) <= 4, commands_run(client)
        assert page == expected
        assert len(indexed.sessions) == 20
        assert {info.metadata["user_id"] for info in indexed.sessions} == {"u7"}
    finally:
        await store.close()


async def test_writes_clean_up_after_50000_expired_sessions_without_a_purge(
    server: RedisServer,
) -> None:
    store = RedisStore.from_url(server.url, index_metadata=("user_id",))
    short = RedisStore.from_url(server.url, index_metadata=("user_id",), ttl=3)
    try:
        await fill(store, 100, prefix="long")
        # The first short sessions may expire (and be cleaned up by the later ones' writes)
        # before the fill ends: the index still holds thousands of them when it does.
        await fill(short, 50_000, prefix="short")
        with server.client() as client:
            assert client.zcard("turnstore:{0000}:index") > 10_000
            await asyncio.sleep(3.5)  # every short session is past its deadline now
            assert await store.count_sessions() == 100
            # Other sessions keep writing: new ones, with the same user ids.
            await fill(store, 14_000, prefix="later")
            left = client.zcard("turnstore:{0000}:index")
            assert left == 14_100, f"{left - 14_100} expired sessions still indexed"
            assert client.zcard("turnstore:{0000}:expiry") == 0
            assert client.hlen("turnstore:{0000}:indexed") == 14_100
            # The value index of u7 holds the live sessions of u7 only.
            assert client.zcard("turnstore:{0000}:v:user_id:u7") == 1_410
        page = await store.list_sessions(limit=20, metadata={"user_id": "u7"})
        assert len(page.sessions) == 20
        assert await store.purge_expired() == 0  # nothing was left to sweep
    finally:
        await short.close()
        await store.close()
