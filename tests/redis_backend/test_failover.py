"""Sentinel failover: a store opened by URL follows the new master by itself, and a caller
that retries a failed write with the same idempotency key gets every batch applied once.

The topology is this module's own (the test kills its master), one master, one replica and
one sentinel that declares a master down after 1 s.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tests.backends import unique_id
from tests.redis_backend.batches import applied_twice, batch, batch_key, stored_batches
from tests.servers import RedisServer, SentinelTopology, start_sentinel
from turnstore import BackendUnavailableError, RedisSession, RedisStore
from turnstore.conformance.items import user

#: Batches known to be on the replica before the master is killed.
REPLICATED_BEFORE_KILL = 20
#: Batches the new master must take before the writer stops.
WRITES_AFTER_FAILOVER = 10
#: Everything (writes, failover, retries) must be done within this.
DEADLINE_SECONDS = 25.0


@pytest.fixture
def topology() -> Iterator[SentinelTopology]:
    topology = start_sentinel()
    try:
        yield topology
    finally:
        topology.stop()


def raw_client(server: RedisServer) -> aioredis.Redis:
    """A client that reports a dead server at once instead of retrying."""
    return aioredis.Redis(
        host=server.host,
        port=server.port,
        socket_timeout=2.0,
        socket_connect_timeout=1.0,
        retry=Retry(NoBackoff(), 0),
    )


async def replica_has_everything(master: aioredis.Redis) -> bool:
    """True when the replica has acknowledged every write the master applied so far.

    WAIT counts replicas that acknowledged the calling connection's own last write, so the
    probe writes first: replication is one ordered stream, and a replica that acknowledged
    the probe has every write the master applied before it.
    """
    try:
        await master.incr("failover-probe")
        return int(await master.wait(1, 1000)) >= 1
    except (RedisConnectionError, RedisTimeoutError):
        return False


@dataclass
class WriterLog:
    acked: list[int] = field(default_factory=list)
    replicated: set[int] = field(default_factory=set)  # acked, then seen on the replica
    acked_by_new_master: set[int] = field(default_factory=set)  # sent after the kill
    failed_attempts: Counter[str] = field(default_factory=Counter)
    first_ack_after_kill: float | None = None
    ready_to_kill: asyncio.Event = field(default_factory=asyncio.Event)


async def write_through_failover(
    session: RedisSession,
    master: aioredis.Redis,
    killed_at: Callable[[], float | None],
    log: WriterLog,
    deadline: float,
) -> None:
    """Append batch after batch; retry a failed one with the same idempotency key, as a
    user should, until the new master has taken `WRITES_AFTER_FAILOVER` batches."""
    n = 0
    while len(log.acked_by_new_master) < WRITES_AFTER_FAILOVER:
        while True:
            sent_after_kill = killed_at() is not None
            try:
                await session.add_items(batch(n), idempotency_key=batch_key(n))
                break
            except BackendUnavailableError as exc:
                log.failed_attempts[type(exc).__name__] += 1
                if time.monotonic() > deadline:
                    raise AssertionError(f"batch {n} still failing: {exc!r}") from exc
                await asyncio.sleep(0.1)
        log.acked.append(n)
        if sent_after_kill:
            log.acked_by_new_master.add(n)
            if log.first_ack_after_kill is None:
                log.first_ack_after_kill = time.monotonic()
        elif await replica_has_everything(master):
            log.replicated.add(n)
            if len(log.replicated) >= REPLICATED_BEFORE_KILL:
                log.ready_to_kill.set()
        n += 1


async def test_writes_survive_a_sentinel_failover_exactly_once(
    topology: SentinelTopology,
) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    store = RedisStore.from_url(topology.url)
    master = raw_client(topology.master)
    session = store.session(unique_id("failover"))
    log = WriterLog()
    killed: list[float] = []
    writer = asyncio.create_task(
        write_through_failover(
            session, master, lambda: killed[0] if killed else None, log, deadline
        )
    )
    ready = asyncio.create_task(log.ready_to_kill.wait())
    try:
        await asyncio.wait(
            [writer, ready], return_when=asyncio.FIRST_COMPLETED, timeout=DEADLINE_SECONDS
        )
        assert len(log.replicated) >= REPLICATED_BEFORE_KILL, writer
        # Killed while the writer keeps going: a batch may be in flight at this moment.
        await asyncio.to_thread(topology.master.kill)
        killed.append(time.monotonic())
        await asyncio.wait_for(writer, timeout=max(0.1, deadline - time.monotonic()))
        # A caller that never saw the replies of the last replicated batches sends them again.
        resent = sorted(log.replicated)[-3:]
        for n in resent:
            await session.add_items(batch(n), idempotency_key=batch_key(n))
        items = await session.get_items()
        async with aioredis.Redis(
            host=topology.sentinel.host, port=topology.sentinel.port
        ) as sentinel:
            master_now = await sentinel.sentinel_get_master_addr_by_name(topology.service_name)
        async with raw_client(topology.replica) as promoted:
            role = (await promoted.role())[0]
            stored_on_promoted = await promoted.llen(session.keys.items)
    finally:
        writer.cancel()
        ready.cancel()
        await store.close()
        await master.aclose()

    assert log.first_ack_after_kill is not None
    failover_seconds = log.first_ack_after_kill - killed[0]
    print(
        f"\nfailover: first write on the new master {failover_seconds:.2f} s after the kill; "
        f"{len(log.acked)} batches acked, failed attempts {dict(log.failed_attempts)}"
    )
    numbers = stored_batches(items)
    assert applied_twice(numbers) == []
    assert numbers == sorted(numbers), "batches are out of order"
    assert sorted(log.replicated - set(numbers)) == [], "replicated batches were lost"
    assert sorted(log.acked_by_new_master - set(numbers)) == []
    assert set(numbers) <= set(log.acked)
    # The store found the new master by itself: the old replica, which holds the history.
    assert isinstance(master_now, tuple)
    host, port = master_now
    assert (host.decode() if isinstance(host, bytes) else host, int(port)) == (
        topology.replica.host,
        topology.replica.port,
    )
    assert role == b"master"
    assert stored_on_promoted == len(items)


async def role_of(server: RedisServer) -> bytes | None:
    try:
        async with raw_client(server) as client:
            return (await client.role())[0]  # type: ignore[no-any-return]
    except (RedisConnectionError, RedisTimeoutError):
        return None


async def test_a_store_follows_a_graceful_failover_whose_old_master_stays_up(
    topology: SentinelTopology,
) -> None:
    """SENTINEL FAILOVER demotes the master instead of killing it: the store's open
    connections still reach it, and it now refuses writes with READONLY. That must send
    the store to the new master (as redis-py's Sentinel connections do), not fail the
    write."""
    store = RedisStore.from_url(topology.url)
    session = store.session(unique_id("graceful"))
    try:
        await session.add_items([user("before")])
        deadline = time.monotonic() + DEADLINE_SECONDS
        async with raw_client(topology.replica) as replica:
            while await replica.llen(session.keys.items) != 1:  # replicated: not lost
                assert time.monotonic() < deadline, "the replica never got the first write"
                await asyncio.sleep(0.05)
        async with aioredis.Redis(
            host=topology.sentinel.host, port=topology.sentinel.port
        ) as sentinel:
            await sentinel.execute_command("SENTINEL", "FAILOVER", topology.service_name)
        while not (
            await role_of(topology.replica) == b"master"
            and await role_of(topology.master) == b"slave"
        ):
            assert time.monotonic() < deadline, "the failover did not complete"
            await asyncio.sleep(0.1)
        await session.add_items([user("after")])  # through a connection to the old master
        assert await session.get_items() == [user("before"), user("after")]
        async with raw_client(topology.replica) as promoted:
            assert await promoted.llen(session.keys.items) == 2
    finally:
        await store.close()


async def test_a_master_demoted_under_open_connections_sends_the_store_to_the_new_one(
    topology: SentinelTopology,
) -> None:
    """The roles swap by hand, without Sentinel's reconfiguration (which also kills the
    clients): the store's open connection reaches the old master, which answers the next
    write with READONLY. The write must go to the new master, once."""
    store = RedisStore.from_url(topology.url)
    session = store.session(unique_id("demoted"))
    try:
        await session.add_items([user("before")])
        deadline = time.monotonic() + DEADLINE_SECONDS
        async with raw_client(topology.replica) as replica, raw_client(topology.master) as old:
            while await replica.llen(session.keys.items) != 1:
                assert time.monotonic() < deadline, "the replica never got the first write"
                await asyncio.sleep(0.05)
            await replica.execute_command("REPLICAOF", "NO", "ONE")
            await old.execute_command("REPLICAOF", topology.replica.host, topology.replica.port)
            async with aioredis.Redis(
                host=topology.sentinel.host, port=topology.sentinel.port
            ) as sentinel:
                name = topology.service_name
                await sentinel.execute_command("SENTINEL", "REMOVE", name)
                await sentinel.execute_command(
                    "SENTINEL", "MONITOR", name, topology.replica.host, topology.replica.port, 1
                )
            await session.add_items([user("after")])
            assert await replica.lrange(session.keys.items, 0, -1) == [
                b'{"role":"user","content":"before"}',
                b'{"role":"user","content":"after"}',
            ]
        assert await session.get_items() == [user("before"), user("after")]
    finally:
        await store.close()
