"""A store opened through Sentinel releases everything it opened, sentinel connections too."""

from __future__ import annotations

from tests.servers import SentinelTopology
from turnstore import RedisStore


def sentinel_clients(topology: SentinelTopology) -> int:
    with topology.sentinel.client() as client:
        return len(client.client_list())


async def test_closing_a_sentinel_store_closes_its_sentinel_connections(
    redis_sentinel: SentinelTopology,
) -> None:
    before = sentinel_clients(redis_sentinel)
    store = RedisStore.from_url(redis_sentinel.url)
    assert await store.ping() is True
    assert sentinel_clients(redis_sentinel) > before  # it asked the sentinel for the master
    await store.close()
    assert sentinel_clients(redis_sentinel) == before
