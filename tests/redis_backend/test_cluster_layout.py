"""Where sessions live on a 3-master Redis Cluster: spread over every shard, each session
whole on one node together with its bucket's index entry.

(A session expiring while it is listed is part of the conformance suite, which runs on the
cluster: tests/conformance/test_store_contract.py.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.crc import key_slot

from tests.backends import unique_id
from tests.servers import ClusterTopology
from turnstore import RedisStore, SessionInfo
from turnstore.conformance.items import turn

SESSIONS = 100


@pytest.fixture
async def store(redis_cluster: ClusterTopology) -> AsyncIterator[RedisStore]:
    store = RedisStore.from_url(redis_cluster.url, key_prefix=unique_id("layout"))
    try:
        yield store
    finally:
        await store.close()


def keys_by_node(cluster: ClusterTopology, prefix: str) -> dict[int, set[str]]:
    """Every key under `prefix`, by the port of the node that holds it (SCAN is per node)."""
    found: dict[int, set[str]] = {}
    for node in cluster.nodes:
        with node.client() as client:
            found[node.port] = {
                key.decode() for key in client.scan_iter(match=f"{prefix}:*", count=1000)
            }
    return found


async def test_sessions_spread_over_every_shard_each_whole_on_one_node(
    redis_cluster: ClusterTopology, store: RedisStore
) -> None:
    sessions = [store.session(unique_id()) for _ in range(SESSIONS)]
    for session in sessions:
        await session.add_items(turn(0))
    stored = keys_by_node(redis_cluster, store.key_prefix)

    per_node = dict.fromkeys(stored, 0)
    for session in sessions:
        keys = session.keys
        own = {keys.items, keys.meta, keys.tokens, keys.bucket.index}
        holders = [port for port, held in stored.items() if own & held]
        assert len(holders) == 1, f"{session.session_id} is split over {holders}"
        (port,) = holders
        assert own <= stored[port], f"{session.session_id} lacks {own - stored[port]}"
        assert redis_cluster.owner_of(key_slot(keys.items.encode())).port == port
        per_node[port] += 1
    assert all(count > 0 for count in per_node.values()), per_node
    assert sum(per_node.values()) == SESSIONS


async def test_listing_and_counting_gather_every_shard(store: RedisStore) -> None:
    ids = [unique_id() for _ in range(SESSIONS)]
    for session_id in ids:
        await store.session(session_id).add_items(turn(0))
    listed: list[SessionInfo] = []
    cursor: str | None = None
    while True:
        page = await store.list_sessions(limit=30, cursor=cursor)
        listed += page.sessions
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    # Sessions written in the same millisecond may list in either order: compare as sets.
    assert sorted(info.session_id for info in listed) == sorted(ids)
    updated = [info.updated_at for info in listed]
    assert updated == sorted(updated, reverse=True)
    assert await store.count_sessions() == SESSIONS
