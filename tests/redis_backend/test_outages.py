"""Outages of the server itself: killed and restarted, down, frozen.

Every test starts its own servers (it kills or stops them) and puts a counting proxy in
front of a standalone server, so the connections a call opens are counted as the server's
listener would see them. A call during an outage must raise `BackendUnavailableError` within
its budget (`timeout`, plus at most one `socket_timeout`, plus a margin for a shared machine),
open at most `retries + 1` connections, and the same store and session objects must work
again once the server is back, with every acknowledged batch stored exactly once, in order.
"""

from __future__ import annotations

import asyncio
import socket
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot

from tests.backends import unique_id
from tests.faults import CountingProxy
from tests.redis_backend.batches import applied_twice, batch, batch_key, stored_batches
from tests.servers import (
    ClusterTopology,
    RedisServer,
    enable_aof_always,
    freeze,
    restart_redis,
    start_cluster,
    start_redis,
    start_sentinel,
    thaw,
    wait_cluster_ok,
)
from turnstore import BackendUnavailableError, RedisSession, RedisStore
from turnstore.redis.keys import CLUSTER_BUCKETS, session_keys

#: Slack for a loaded machine on top of every time bound.
MARGIN = 3.0

#: The budget of the outage tests: short, so that an outage shows within seconds.
TIMEOUT = 2.0
SOCKET_TIMEOUT = 0.5
RETRIES = 2
BUDGET_QUERY = (
    f"timeout={TIMEOUT:g}&socket_timeout={SOCKET_TIMEOUT:g}"
    f"&socket_connect_timeout={SOCKET_TIMEOUT:g}&retries={RETRIES}"
)
#: An injected client has no `retries` option: the library's default (3) resends for it.
INJECTED_RETRIES = 3

PATHS = ["url", "injected"]


def call_bound(timeout: float = TIMEOUT, socket_timeout: float = SOCKET_TIMEOUT) -> float:
    return timeout + socket_timeout + MARGIN


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def quiet_client(port: int, *, socket_timeout: float = SOCKET_TIMEOUT) -> aioredis.Redis:
    """An injected client whose own policy makes no retries, so the library resends."""
    return aioredis.Redis(
        host="127.0.0.1",
        port=port,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        retry=Retry(NoBackoff(), 0),
    )


@dataclass
class Opened:
    store: RedisStore
    retries: int
    client: aioredis.Redis | RedisCluster | None = None

    async def aclose(self) -> None:
        await self.store.close()
        if self.client is not None:
            await self.client.aclose()


def open_standalone(path: str, port: int, *, timeout: float = TIMEOUT, **query: Any) -> Opened:
    socket_timeout = float(query.pop("socket_timeout", SOCKET_TIMEOUT))
    if path == "url":
        extra = "".join(f"&{k}={v}" for k, v in query.items())
        url = (
            f"redis://127.0.0.1:{port}/0?timeout={timeout:g}&socket_timeout={socket_timeout:g}"
            f"&socket_connect_timeout={SOCKET_TIMEOUT:g}&retries={RETRIES}{extra}"
        )
        return Opened(RedisStore.from_url(url, key_prefix=unique_id("out")), RETRIES)
    client = quiet_client(port, socket_timeout=socket_timeout)
    store = RedisStore(client, key_prefix=unique_id("out"), timeout=timeout)
    return Opened(store, INJECTED_RETRIES, client)


@pytest.fixture
def server() -> Iterator[RedisServer]:
    started = start_redis()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def proxy(server: RedisServer) -> Iterator[CountingProxy]:
    counting = CountingProxy(server.port)
    try:
        yield counting
    finally:
        counting.close()


# -- 1. killed and restarted ---------------------------------------------------------------------


@dataclass
class Writers:
    """Writers that append numbered batches, each retried with its idempotency key until
    acknowledged, as a user should; what was acknowledged and how failures went."""

    sessions: list[RedisSession]
    acked: dict[str, list[int]] = field(default_factory=dict)
    failures: list[tuple[str, float]] = field(default_factory=list)  # (error type, seconds)
    unexpected: list[BaseException] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def write(self, session: RedisSession, deadline: float) -> None:
        done = self.acked.setdefault(session.session_id, [])
        n = 0
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                await session.add_items(batch(n), idempotency_key=batch_key(n))
            except BackendUnavailableError:
                self.failures.append(("BackendUnavailableError", time.monotonic() - started))
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
                continue
            except Exception as error:
                self.unexpected.append(error)
                return
            done.append(n)
            n += 1
            await asyncio.sleep(0.01)

    def counts(self) -> list[int]:
        return [len(self.acked.get(s.session_id, [])) for s in self.sessions]


def tracebacks(errors: list[BaseException]) -> str:
    """Where each error came from, for an assertion message."""
    return "\n".join("".join(traceback.format_exception(error)) for error in errors)


async def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def run_through_a_kill(
    store: RedisStore,
    kill: Any,
    restart: Any,
    *,
    writers: int = 3,
    outage: float = 2.5,
    session_ids: list[str] | None = None,
) -> tuple[Writers, dict[str, float]]:
    """Writers append; `kill()` runs after each has 10 batches acknowledged, `restart()`
    `outage` seconds later; the writers go on until each has 10 more."""
    deadline = time.monotonic() + 60
    ids = session_ids or [unique_id("w") for _ in range(writers)]
    log = Writers([store.session(session_id) for session_id in ids])
    tasks = [asyncio.create_task(log.write(s, deadline)) for s in log.sessions]
    marks: dict[str, float] = {}
    try:
        await wait_until(lambda: min(log.counts()) >= 10 or log.unexpected, 20, "first batches")
        assert not log.unexpected, tracebacks(log.unexpected)
        before = log.counts()
        await asyncio.to_thread(kill)
        marks["killed"] = time.monotonic()
        await asyncio.sleep(outage)
        marks["failures_during_outage"] = len(log.failures)
        await asyncio.to_thread(restart)
        marks["restarted"] = time.monotonic()
        await wait_until(
            lambda: (
                all(c >= b + 10 for c, b in zip(log.counts(), before, strict=True))
                or log.unexpected
            ),
            40,
            "batches after the restart",
        )
    finally:
        log.stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            raise AssertionError("a writer failed") from task.exception()
    assert not log.unexpected, tracebacks(log.unexpected)
    return log, marks


async def assert_every_acknowledged_batch_once(store: RedisStore, log: Writers) -> None:
    for session in log.sessions:
        stored = stored_batches(await session.get_items())
        assert applied_twice(stored) == []
        assert stored == log.acked[session.session_id], session.session_id


@pytest.mark.parametrize("path", PATHS)
async def test_a_killed_and_restarted_server_keeps_every_acknowledged_batch_once(
    path: str, server: RedisServer, proxy: CountingProxy
) -> None:
    enable_aof_always(server)
    opened = open_standalone(path, proxy.port)
    restarted: list[RedisServer] = []
    try:
        accepts: dict[str, int] = {}

        def kill() -> None:
            server.kill()
            accepts["killed"] = proxy.accepted

        def restart() -> None:
            accepts["before_restart"] = proxy.accepted
            restarted.append(restart_redis(server))

        log, marks = await run_through_a_kill(opened.store, kill, restart)

        failed = int(marks["failures_during_outage"])
        assert failed >= 1, "no call failed while the server was down"
        assert max(seconds for _, seconds in log.failures) <= call_bound()
        # Calls still in flight when the counters were read may have opened one round more.
        in_flight = len(log.sessions)
        assert accepts["before_restart"] - accepts["killed"] <= (opened.retries + 1) * (
            failed + in_flight
        )
        await assert_every_acknowledged_batch_once(opened.store, log)
        # The same store still answers everything else.
        assert await opened.store.ping() is True
        assert await opened.store.count_sessions() == len(log.sessions)
    finally:
        await opened.aclose()
        for again in restarted:
            again.stop()


async def test_a_killed_and_restarted_sentinel_master_keeps_every_acknowledged_batch_once() -> None:
    topology = start_sentinel()
    restarted: list[RedisServer] = []
    store = RedisStore.from_url(f"{topology.url}?{BUDGET_QUERY}", key_prefix=unique_id("out"))
    try:
        # The master comes back on its own address: the sentinel must not fail over meanwhile.
        with topology.sentinel._probe() as sentinel:
            sentinel.execute_command(
                "SENTINEL", "SET", topology.service_name, "down-after-milliseconds", "60000"
            )
        enable_aof_always(topology.master)

        def restart() -> None:
            restarted.append(restart_redis(topology.master))

        log, marks = await run_through_a_kill(store, topology.master.kill, restart)

        assert marks["failures_during_outage"] >= 1
        assert max(seconds for _, seconds in log.failures) <= call_bound()
        await assert_every_acknowledged_batch_once(store, log)
        assert await store.ping() is True
    finally:
        await store.close()
        for again in restarted:
            again.stop()
        topology.stop()


CLUSTER_ARGS = (
    "--cluster-enabled",
    "yes",
    "--cluster-config-file",
    "nodes.conf",
    "--cluster-node-timeout",
    "2000",
)


def ids_on(cluster: ClusterTopology, node: RedisServer, count: int) -> list[str]:
    """`count` session ids whose keys live on `node`."""
    found: list[str] = []
    while len(found) < count:
        session_id = unique_id("w")
        # The hash tag is the session's bucket, whatever the key prefix.
        items = session_keys("p", session_id, CLUSTER_BUCKETS).items
        if cluster.owner_of(key_slot(items.encode())) is node:
            found.append(session_id)
    return found


@pytest.mark.parametrize("path", PATHS)
async def test_a_killed_and_restarted_cluster_node_keeps_every_acknowledged_batch_once(
    path: str,
) -> None:
    cluster = start_cluster()
    restarted: list[RedisServer] = []
    client: RedisCluster | None = None
    if path == "url":
        store = RedisStore.from_url(f"{cluster.url}?{BUDGET_QUERY}", key_prefix=unique_id("out"))
    else:
        client = RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in cluster.startup_nodes],
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        store = RedisStore(client, key_prefix=unique_id("out"), timeout=TIMEOUT)
    try:
        for node in cluster.nodes:
            enable_aof_always(node)
        victim = cluster.nodes[1]

        def restart() -> None:
            restarted.append(restart_redis(victim, *CLUSTER_ARGS))

        # Writers on the victim and on the other nodes.
        log, marks = await run_through_a_kill(
            store,
            victim.kill,
            restart,
            session_ids=ids_on(cluster, victim, 3) + ids_on(cluster, cluster.nodes[0], 2),
        )

        assert marks["failures_during_outage"] >= 1
        # The cluster may report CLUSTERDOWN a while after the restart: waited on within the
        # same budget, so a call still ends within it.
        assert max(seconds for _, seconds in log.failures) <= call_bound()
        await assert_every_acknowledged_batch_once(store, log)
    finally:
        await store.close()
        if client is not None:
            await client.aclose()
        for again in restarted:
            again.stop()
        cluster.stop()


# -- 2. a down server ----------------------------------------------------------------------------


async def timed(call: Any) -> tuple[float, BaseException | None, Any]:
    started = time.monotonic()
    try:
        result = await call
    except BaseException as error:
        return time.monotonic() - started, error, None
    return time.monotonic() - started, None, result


@pytest.mark.parametrize("path", PATHS)
async def test_every_call_to_a_down_server_fails_fast_with_few_connections(path: str) -> None:
    proxy = CountingProxy(closed_port())  # accepts, then closes: the server is not there
    opened = open_standalone(path, proxy.port)
    session = opened.store.session(unique_id("down"))
    try:
        calls = {
            "add_items": lambda: session.add_items([{"role": "user", "content": "hi"}]),
            "get_items": lambda: session.get_items(),
            "list_sessions": lambda: opened.store.list_sessions(),
            "count_sessions": lambda: opened.store.count_sessions(),
        }
        for name, call in calls.items():
            before = proxy.accepted
            seconds, error, _ = await timed(call())
            assert isinstance(error, BackendUnavailableError), (name, error)
            assert error.__cause__ is not None, name
            assert seconds <= call_bound(), (name, seconds)
            assert 1 <= proxy.accepted - before <= opened.retries + 1, (name, proxy.accepted)
        before = proxy.accepted
        seconds, error, answer = await timed(opened.store.ping())
        assert error is None and answer is False
        assert seconds <= call_bound()
        assert proxy.accepted - before <= opened.retries + 1
    finally:
        await opened.aclose()
        proxy.close()


@pytest.mark.parametrize("path", PATHS)
async def test_a_refused_connection_fails_within_the_budget(path: str) -> None:
    opened = open_standalone(path, closed_port())
    try:
        seconds, error, _ = await timed(
            opened.store.session("s").add_items([{"role": "user", "content": "hi"}])
        )
        assert isinstance(error, BackendUnavailableError)
        assert seconds <= call_bound()
        seconds, error, answer = await timed(opened.store.ping())
        assert error is None and answer is False
        assert seconds <= call_bound()
    finally:
        await opened.aclose()


async def test_an_injected_client_with_its_own_retries_still_fails_within_the_budget() -> None:
    # redis-py's default policy resends (and reconnects) on its own: the library leaves that
    # to it and bounds the call by its budget only, so no connection count is asserted here.
    proxy = CountingProxy(closed_port())
    client = aioredis.Redis(
        host="127.0.0.1",
        port=proxy.port,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
    )
    store = RedisStore(client, key_prefix=unique_id("out"), timeout=TIMEOUT)
    try:
        for call in (
            store.session("s").add_items([{"role": "user", "content": "hi"}]),
            store.session("s").get_items(),
            store.count_sessions(),
        ):
            seconds, error, _ = await timed(call)
            assert isinstance(error, BackendUnavailableError), error
            assert seconds <= call_bound(), seconds
        seconds, error, answer = await timed(store.ping())
        assert error is None and answer is False
        assert seconds <= call_bound()
        assert proxy.accepted >= 4, "the client's own retries did not run"
    finally:
        await store.close()
        await client.aclose()
        proxy.close()


# -- 3. a frozen server --------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
async def test_a_frozen_server_fails_the_call_in_budget_and_its_batch_applies_once(
    path: str, server: RedisServer, proxy: CountingProxy
) -> None:
    opened = open_standalone(path, proxy.port, timeout=3.0, socket_timeout=1.0)
    session = opened.store.session(unique_id("frozen"))
    try:
        await session.add_items(batch(0), idempotency_key=batch_key(0))
        freeze(server)
        try:
            before = proxy.accepted
            seconds, error, _ = await timed(
                session.add_items(batch(1), idempotency_key=batch_key(1))
            )
            opened_during = proxy.accepted - before
            seconds_read, read_error, _ = await timed(session.get_items())
        finally:
            thaw(server)
        assert isinstance(error, BackendUnavailableError), tracebacks([error] if error else [])
        assert seconds <= call_bound(3.0, 1.0), seconds
        assert opened_during <= opened.retries + 1
        assert isinstance(read_error, BackendUnavailableError), tracebacks(
            [read_error] if read_error else []
        )
        assert seconds_read <= call_bound(3.0, 1.0), seconds_read
        # The frozen server may still run the request it had buffered: the caller's resend
        # with the same key must leave the batch once.
        await session.add_items(batch(1), idempotency_key=batch_key(1))
        await session.add_items(batch(2), idempotency_key=batch_key(2))
        assert stored_batches(await session.get_items()) == [0, 1, 2]
        assert await opened.store.ping() is True
    finally:
        await opened.aclose()


async def test_a_frozen_cluster_node_fails_the_call_in_budget() -> None:
    cluster = start_cluster()
    store = RedisStore.from_url(
        f"{cluster.url}?timeout=3&socket_timeout=1&retries={RETRIES}", key_prefix=unique_id("out")
    )
    try:
        victim = cluster.nodes[0]
        ids = ids_on(cluster, victim, 3) + ids_on(cluster, cluster.nodes[1], 2)
        sessions = [store.session(session_id) for session_id in ids]
        for s in sessions:
            await s.add_items(batch(0), idempotency_key=batch_key(0))
        freeze(victim)
        try:
            outcomes = await asyncio.gather(
                *(timed(s.add_items(batch(1), idempotency_key=batch_key(1))) for s in sessions)
            )
        finally:
            thaw(victim)
        failed = [(seconds, error) for seconds, error, _ in outcomes if error is not None]
        assert len(failed) >= 3, outcomes
        for seconds, error in failed:
            assert isinstance(error, BackendUnavailableError), error
            assert seconds <= call_bound(3.0, 1.0), seconds
        # The other nodes may have flagged the frozen one as failing (CLUSTERDOWN) for a
        # while after it woke: the same store works once the cluster is whole again.
        await asyncio.to_thread(wait_cluster_ok, cluster)
        for s in sessions:
            await s.add_items(batch(1), idempotency_key=batch_key(1))
            assert stored_batches(await s.get_items()) == [0, 1]
    finally:
        await store.close()
        cluster.stop()


@pytest.mark.parametrize("path", PATHS)
async def test_a_call_to_a_frozen_server_cancelled_by_its_caller_raises_cancelled_error(
    path: str, server: RedisServer, proxy: CountingProxy
) -> None:
    # The library cancels an attempt at its deadline: a cancellation that is not its own
    # must still reach the caller, not be taken for a timeout or a lost reply.
    opened = open_standalone(path, proxy.port, timeout=3.0, socket_timeout=1.0)
    session = opened.store.session(unique_id("frozen"))
    try:
        await session.add_items(batch(0), idempotency_key=batch_key(0))
        freeze(server)
        try:
            for wait in (0.2, 1.5, 2.5):  # in the first, second and third attempt
                call = asyncio.create_task(
                    session.add_items(batch(1), idempotency_key=batch_key(1))
                )
                await asyncio.sleep(wait)
                assert not call.done()
                call.cancel()
                _, error, _ = await timed(call)
                assert isinstance(error, asyncio.CancelledError), tracebacks(
                    [error] if error else []
                )
        finally:
            thaw(server)
    finally:
        await opened.aclose()
