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
from turnstore import RedisStore, SessionInfo, SessionRecord, export_sessions, import_sessions
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


async def test_the_batch_paths_write_and_read_each_session_under_its_own_keys(
    redis_cluster: ClusterTopology, store: RedisStore
) -> None:
    # Import, export and migrate build a batch's keys from the store's bucket keys
    # (`RedisStore.encoded_script_keys`); a session built alone must find the same keys.
    ids = [unique_id(), "a:b{c}%d", "ünï/cödé", "x" * 200, *(unique_id() for _ in range(40))]
    records = [SessionRecord(i, turn(n), {"n": str(n)}) for n, i in enumerate(ids)]
    assert await import_sessions(store, records) == ["created"] * len(ids)
    stored = keys_by_node(redis_cluster, store.key_prefix)
    for n, session_id in enumerate(ids):
        keys = store.keys_of(session_id)
        batch_keys, member = store.encoded_script_keys(session_id)
        assert batch_keys == tuple(k.encode() for k in keys.script_keys)
        assert member == keys.member.encode()
        session = store.session(session_id)
        assert await session.get_items() == turn(n)
        assert any({keys.items, keys.meta} <= held for held in stored.values()), session_id
    copies = await export_sessions(store, ids)
    assert [c.metadata if c else None for c in copies] == [{"n": str(n)} for n in range(len(ids))]
