"""Resharding: a slot holding live sessions moves to another node while a writer appends.

Redis refuses a multi-key command (every session script declares five keys) while the keys
of its slot are being moved: the source answers ASK for a key it no longer has, the target
answers TRYAGAIN unless it has them all. redis-py follows MOVED and ASK and repeats TRYAGAIN
16 times (about 0.4 s), then raises `ClusterError("TTL exhausted.")`; the library does not
retry that. The tests below show what a user sees: a caller that retries with the same
idempotency key loses and doubles nothing, and the marked test states what the library
should do itself.

The cluster is this module's own: the tests move its slots around.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from redis.crc import key_slot
from redis.exceptions import ClusterError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tests.backends import unique_id
from tests.redis_backend.batches import applied_twice, batch, batch_key, stored_batches
from tests.servers import ClusterTopology, RedisServer, SlotMigration, start_cluster
from turnstore import RedisSession, RedisStore
from turnstore.redis.keys import CLUSTER_BUCKETS, bucket_of

#: What a caller sees while a session's slot is being moved (and should retry).
MIGRATION_ERRORS = (ClusterError, TryAgainError, RedisConnectionError, RedisTimeoutError)
#: Batches the writer appends after the slot has moved, through the MOVED redirect.
WRITES_AFTER_MOVE = 20
DEADLINE_SECONDS = 20.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterTopology]:
    cluster = start_cluster(3)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def store(cluster: ClusterTopology) -> RedisStore:
    return RedisStore.from_url(cluster.url, key_prefix=unique_id("reshard"))


def slot_of(session: RedisSession) -> int:
    return key_slot(session.keys.items.encode())


def other_node(cluster: ClusterTopology, slot: int) -> RedisServer:
    owner = cluster.owner_of(slot)
    return next(node for node in cluster.nodes if node is not owner)


def neighbour_ids(session_id: str, count: int) -> list[str]:
    """Ids of other sessions in the same hash-tag bucket, hence the same slot."""
    bucket = bucket_of(session_id, CLUSTER_BUCKETS)
    found: list[str] = []
    n = 0
    while len(found) < count:
        candidate = f"{session_id}-n{n}"
        if bucket_of(candidate, CLUSTER_BUCKETS) == bucket:
            found.append(candidate)
        n += 1
    return found


@dataclass
class Writer:
    session: RedisSession
    acked: list[int] = field(default_factory=list)
    retried: Counter[str] = field(default_factory=Counter)
    after_move: int = 0
    in_full_swing: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, moved: asyncio.Event, deadline: float) -> None:
        """Append batch after batch, each retried with its idempotency key until it is
        acknowledged, until `WRITES_AFTER_MOVE` batches went in after the move."""
        n = 0
        while self.after_move < WRITES_AFTER_MOVE:
            while True:
                was_moved = moved.is_set()
                try:
                    await self.session.add_items(batch(n), idempotency_key=batch_key(n))
                    break
                except MIGRATION_ERRORS as exc:
                    self.retried[f"{type(exc).__name__}: {exc}"] += 1
                    if time.monotonic() > deadline:
                        raise AssertionError(f"batch {n} still failing: {exc!r}") from exc
                    await asyncio.sleep(0.02)
            self.acked.append(n)
            self.after_move += was_moved
            if len(self.acked) == 10:
                self.in_full_swing.set()
            n += 1


async def test_a_slot_moving_under_a_writer_loses_and_doubles_no_batch(
    cluster: ClusterTopology, store: RedisStore
) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    session = store.session(unique_id("moving"))
    await session.add_items(batch(-1))
    # Other live sessions of the slot: more keys to move, more time half-moved.
    neighbours = [store.session(i) for i in neighbour_ids(session.session_id, 3)]
    for neighbour in neighbours:
        await neighbour.add_items(batch(-1))
    slot = slot_of(session)
    migration = SlotMigration(cluster, slot, other_node(cluster, slot))
    writer = Writer(session)
    moved = asyncio.Event()
    writing = asyncio.create_task(writer.run(moved, deadline))
    try:
        await asyncio.wait_for(writer.in_full_swing.wait(), timeout=DEADLINE_SECONDS)
        await asyncio.to_thread(migration.run, per_step=1, pause=0.05)
        moved.set()
        await asyncio.wait_for(writing, timeout=max(0.1, deadline - time.monotonic()))
        items = await session.get_items()
        neighbour_items = [await neighbour.get_items() for neighbour in neighbours]
    finally:
        writing.cancel()
        await store.close()

    print(
        f"\nresharding: {migration.moved_keys} keys moved, {len(writer.acked)} batches acked, "
        f"caller retries: {dict(writer.retried)}"
    )
    numbers = stored_batches(items)
    assert applied_twice(numbers) == []
    assert numbers == [-1, *writer.acked], "a batch was lost or reordered"
    assert all(stored_batches(got) == [-1] for got in neighbour_items)
    # The session's keys, and nothing else of the slot, ended on the new node.
    assert cluster.owner_of(slot) is migration.target
    with migration.target.client() as target, migration.source.client() as source:
        keys = session.keys
        assert target.exists(keys.items, keys.meta, keys.tokens, keys.bucket.index) == 4
        assert source.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
        assert target.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == migration.moved_keys


async def test_a_moved_session_reads_and_lists_through_a_new_client(
    cluster: ClusterTopology, store: RedisStore
) -> None:
    session = store.session(unique_id("moved"))
    await session.add_items(batch(0))
    slot = slot_of(session)
    await asyncio.to_thread(SlotMigration(cluster, slot, other_node(cluster, slot)).run)
    await session.add_items(batch(1))  # the old client follows MOVED
    fresh = RedisStore.from_url(cluster.url, key_prefix=session.key_prefix)
    try:
        assert stored_batches(await fresh.session(session.session_id).get_items()) == [0, 1]
        listed = await fresh.list_sessions()
        assert [info.session_id for info in listed.sessions] == [session.session_id]
        assert await fresh.count_sessions() == 1
    finally:
        await fresh.close()
        await store.close()


async def test_a_write_waits_out_a_short_slot_migration(
    cluster: ClusterTopology, store: RedisStore
) -> None:
    session = store.session(unique_id("waits"))
    await session.add_items(batch(0))
    slot = slot_of(session)
    migration = SlotMigration(cluster, slot, other_node(cluster, slot))
    # Marking the slot MIGRATING is enough: the session has no TTL, so its bucket has no
    # expiry key, and a script declaring a missing key is refused until the slot is moved.
    await asyncio.to_thread(migration.begin)
    try:
        write = asyncio.create_task(session.add_items(batch(1), idempotency_key=batch_key(1)))
        await asyncio.sleep(1.0)
        await asyncio.to_thread(migration.move_keys)
        await asyncio.to_thread(migration.finish)
        await write
        assert stored_batches(await session.get_items()) == [0, 1]
    finally:
        if not migration.finished:
            await asyncio.to_thread(migration.move_keys)
            await asyncio.to_thread(migration.finish)
        await store.close()


async def test_listing_and_counting_wait_out_a_slot_migration(
    cluster: ClusterTopology, store: RedisStore
) -> None:
    # While a slot is MIGRATING, a script whose keys are split between the two nodes (or
    # partly absent) gets TRYAGAIN: the store waits and sends it again once the move is done.
    session = store.session(unique_id("listed"))
    await session.add_items(batch(0))
    slot = slot_of(session)
    migration = SlotMigration(cluster, slot, other_node(cluster, slot))
    await asyncio.to_thread(migration.begin)
    try:
        listing = asyncio.ensure_future(store.list_sessions())
        counting = asyncio.ensure_future(store.count_sessions())
        await asyncio.sleep(0.5)  # both are waiting on the moving slot now
        await asyncio.to_thread(migration.move_keys)
        await asyncio.to_thread(migration.finish)
        listed = await asyncio.wait_for(listing, 15)
        assert [info.session_id for info in listed.sessions] == [session.session_id]
        assert await asyncio.wait_for(counting, 15) == 1
    finally:
        await store.close()
