"""Faults a running server inflicts on its clients: connections killed under load, writes
paused, the script cache flushed, memory full, idle connections dropped, a read-only replica,
a missing permission; and a storm of cancelled calls. Both paths: a store opened by URL and
one over an injected client.

The store's connections carry a unique `client_name`, so `CLIENT LIST` on the server tells
which (and how many) are the library's.
"""

from __future__ import annotations

import asyncio
import random
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import NoPermissionError, OutOfMemoryError, ReadOnlyError

from tests.backends import unique_id
from tests.redis_backend.batches import applied_twice, batch, batch_key, stored_batches
from tests.servers import ClusterTopology, RedisServer, start_redis
from turnstore import (
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    RedisSession,
    RedisStore,
    open_store,
)

PATHS = ["url", "injected"]
#: Slack for a loaded machine on top of every time bound.
MARGIN = 3.0


@dataclass
class Opened:
    store: RedisStore
    name: str  # the client_name of every connection of the store
    client: Any = None

    async def aclose(self) -> None:
        await self.store.close()
        if self.client is not None:
            await self.client.aclose()


def open_on(
    path: str,
    server: RedisServer,
    *,
    query: str = "",
    prefix: str | None = None,
    **client_options: Any,
) -> Opened:
    name = unique_id("lib")
    prefix = prefix or unique_id("cmd")
    if path == "url":
        url = f"{server.url}?client_name={name}" + (f"&{query}" if query else "")
        return Opened(RedisStore.from_url(url, key_prefix=prefix), name)
    client = aioredis.Redis(host=server.host, port=server.port, client_name=name, **client_options)
    return Opened(RedisStore(client, key_prefix=prefix), name, client)


def cluster_store(
    path: str, cluster: ClusterTopology, *, query: str = ""
) -> tuple[RedisStore, RedisCluster | None]:
    """A store over `cluster`: opened by URL, or over an injected client (also returned)."""
    prefix = unique_id("cmd")
    if path == "url":
        return RedisStore.from_url(
            cluster.url + (f"?{query}" if query else ""), key_prefix=prefix
        ), None
    client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in cluster.startup_nodes])
    return RedisStore(client, key_prefix=prefix), client


def connections_named(server: RedisServer, name: str) -> list[dict[str, Any]]:
    with server.client() as admin:
        return [c for c in admin.client_list() if c.get("name") == name]


def user_items(session_id: str, n: int, size: int = 2) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"{session_id}|{n}|{j}"} for j in range(size)]


# -- 4. CLIENT KILL in a loop --------------------------------------------------------------------

BATCHES = 120


async def append_while_killing(
    store: RedisStore,
    servers: list[RedisServer],
    name: str,
    *,
    max_connections: int | None,
    batches: int = BATCHES,
    writers: int = 6,
    failures_known: str | None = None,
) -> None:
    """Sessions append while a thread kills every connection named `name` on `servers`
    every few ms. Half the sessions retry a failed batch with its idempotency key; the other
    half send no key (each call's own batch token), so a failed call's batch may or may not
    be stored, but at most once. A call fails only when every resend lost its connection.
    `failures_known`: why more than a quarter of the calls may fail here (a known bug): the
    share is then reported as an expected failure once everything else has passed."""
    sessions = [store.session(unique_id("kill")) for _ in range(writers)]
    keyed = {s.session_id: i % 2 == 0 for i, s in enumerate(sessions)}
    acked: dict[str, list[int]] = {s.session_id: [] for s in sessions}
    maybe: dict[str, set[int]] = {s.session_id: set() for s in sessions}
    unavailable = 0
    bare: list[BaseException] = []  # anything but our errors reaching a caller
    slowest = 0.0  # the longest call, failed or not
    stop = asyncio.Event()
    killed = 0

    def kill_loop() -> None:
        nonlocal killed
        admins = [server.client() for server in servers]
        try:
            while not stop.is_set():
                for admin in admins:
                    for entry in admin.client_list():
                        if entry.get("name") == name:
                            killed += int(admin.client_kill_filter(_id=entry["id"]))
                time.sleep(random.uniform(0.001, 0.005))
        finally:
            for admin in admins:
                admin.close()

    async def write(session: RedisSession) -> None:
        nonlocal unavailable, slowest
        for n in range(batches):
            if bare:
                return
            while True:
                started = time.monotonic()
                try:
                    if keyed[session.session_id]:
                        await session.add_items(batch(n), idempotency_key=batch_key(n))
                    else:
                        await session.add_items(batch(n))
                except BackendUnavailableError:
                    unavailable += 1
                    if keyed[session.session_id]:
                        continue  # the caller resends with the same key
                    maybe[session.session_id].add(n)
                    break
                except Exception as error:
                    bare.append(error)
                    return
                finally:
                    slowest = max(slowest, time.monotonic() - started)
                acked[session.session_id].append(n)
                break

    killer = asyncio.create_task(asyncio.to_thread(kill_loop))
    try:
        await asyncio.wait_for(asyncio.gather(*(write(s) for s in sessions)), 90)
    finally:
        stop.set()
        await asyncio.wait_for(killer, 10)
    assert bare == [], "a driver error reached the caller:\n" + "".join(
        traceback.format_exception(bare[0])
    )
    assert killed > 0, "the loop killed no connection of the store"
    # Every call returned or raised within its budget (plus one socket timeout).
    budget = store.connection.budget
    assert slowest <= budget.timeout + budget.read_timeout + MARGIN, slowest
    for session in sessions:
        stored = stored_batches(await session.get_items())
        assert applied_twice(stored) == [], session.session_id
        if keyed[session.session_id]:
            assert stored == acked[session.session_id] == list(range(batches))
        else:
            # In order, every acknowledged batch, and of the failed ones at most a copy.
            assert stored == sorted(stored)
            assert set(acked[session.session_id]) <= set(stored)
            assert set(stored) <= set(acked[session.session_id]) | maybe[session.session_id]
    if max_connections is not None:
        assert sum(len(connections_named(s, name)) for s in servers) <= max_connections
    bound = batches * len(sessions) // 4
    if failures_known is not None and unavailable > bound:
        pytest.xfail(f"{unavailable} of {batches * len(sessions)} calls failed: {failures_known}")
    assert unavailable <= bound, f"{unavailable} calls failed"


@pytest.mark.parametrize("path", PATHS)
async def test_connections_killed_in_a_loop_lose_and_double_nothing(
    path: str, redis_server: RedisServer
) -> None:
    opened = open_on(path, redis_server, query="max_connections=8")
    try:
        await append_while_killing(
            opened.store,
            [redis_server],
            opened.name,
            max_connections=8 if path == "url" else None,
        )
    finally:
        await opened.aclose()


@pytest.mark.parametrize("path", ["url", "injected"])
async def test_cluster_connections_killed_in_a_loop_lose_and_double_nothing(
    path: str, redis_cluster: ClusterTopology
) -> None:
    name = unique_id("lib")
    prefix = unique_id("cmd")
    client: RedisCluster | None = None
    if path == "url":
        store = RedisStore.from_url(
            f"{redis_cluster.url}?client_name={name}&max_connections=8", key_prefix=prefix
        )
    else:
        client = RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in redis_cluster.startup_nodes],
            client_name=name,
        )
        store = RedisStore(client, key_prefix=prefix)
    try:
        # More writers than on standalone: many calls in flight on each node when one of
        # them loses its connection.
        await append_while_killing(
            store,
            redis_cluster.nodes,
            name,
            # A store's max_connections bounds each node's pool.
            max_connections=8 * len(redis_cluster.nodes) if path == "url" else None,
            batches=20,
            writers=16,
            failures_known=(
                "redis-py's RedisCluster reloads its slot map after every lost connection "
                "(one more connection, itself killed in the loop), and an injected client "
                "resends by its own policy: on a loaded machine more than a quarter of the "
                "calls can lose every attempt (issue 12)"
            ),
        )
    finally:
        await store.close()
        if client is not None:
            await client.aclose()


# -- 5. CLIENT PAUSE WRITE -----------------------------------------------------------------------


async def reads_and_a_write_through_a_pause(
    store: RedisStore, servers: list[RedisServer], *, cold_script_cache: bool
) -> None:
    """Reads answer while every server pauses writes for 1.5 s; a write waits for the pause
    and is applied once."""
    session = store.session(unique_id("pause"))
    await session.add_items(batch(0), idempotency_key=batch_key(0))
    await session.update_metadata({"user_id": "u1"})
    # Every read once, so that the server knows the scripts (and their no-writes flag).
    await session.get_info()
    await session.get_items()
    await session.get_items(limit=2)
    await store.list_sessions()
    await store.count_sessions()
    for server in servers:
        with server.client() as admin:
            if cold_script_cache:
                admin.script_flush()
            admin.execute_command("CLIENT", "PAUSE", "1500", "WRITE")
    paused_at = time.monotonic()
    try:
        info = await asyncio.wait_for(session.get_info(), 1.0)
        everything = await asyncio.wait_for(session.get_items(), 1.0)
        latest = await asyncio.wait_for(session.get_items(limit=2), 1.0)
        page = await asyncio.wait_for(store.list_sessions(), 1.0)
        count = await asyncio.wait_for(store.count_sessions(), 1.0)
        read_done = time.monotonic() - paused_at
        await session.add_items(batch(1), idempotency_key=batch_key(1))
        write_done = time.monotonic() - paused_at
    finally:
        for server in servers:
            with server.client() as admin:
                admin.execute_command("CLIENT", "UNPAUSE")
    assert info is not None and info.item_count == 3
    assert info.metadata == {"user_id": "u1"}
    assert stored_batches(everything) == [0]
    assert latest == batch(0)[-2:]
    assert [i.session_id for i in page.sessions] == [session.session_id]
    assert count == 1
    assert read_done < 1.4, "a read waited for the pause"
    assert 1.0 <= write_done <= 1.5 + MARGIN, write_done
    assert stored_batches(await session.get_items()) == [0, 1]


@pytest.mark.parametrize("path", PATHS)
async def test_reads_answer_during_client_pause_write_and_a_write_waits_for_it(
    path: str, redis_server: RedisServer
) -> None:
    opened = open_on(path, redis_server)
    try:
        await reads_and_a_write_through_a_pause(
            opened.store, [redis_server], cold_script_cache=False
        )
    finally:
        await opened.aclose()


@pytest.mark.parametrize("path", PATHS)
async def test_reads_answer_during_client_pause_write_with_an_empty_script_cache(
    path: str, redis_server: RedisServer
) -> None:
    opened = open_on(path, redis_server)
    try:
        await reads_and_a_write_through_a_pause(
            opened.store, [redis_server], cold_script_cache=True
        )
    finally:
        await opened.aclose()


@pytest.mark.parametrize("path", PATHS)
async def test_cluster_reads_answer_during_client_pause_write_and_a_write_waits_for_it(
    path: str, redis_cluster: ClusterTopology
) -> None:
    store, client = cluster_store(path, redis_cluster)
    try:
        await reads_and_a_write_through_a_pause(store, redis_cluster.nodes, cold_script_cache=False)
    finally:
        await store.close()
        if client is not None:
            await client.aclose()


# -- 6. SCRIPT FLUSH in a loop -------------------------------------------------------------------


async def exercise_while_flushing(store: RedisStore, flush: Any, seconds: float = 2.0) -> None:
    """Sessions append, read, lock and edit metadata while the store lists, counts and
    purges, and `flush()` empties the script cache every few ms: nothing may fail."""
    stop = asyncio.Event()
    flushes = 0

    def flush_loop() -> None:
        nonlocal flushes
        while not stop.is_set():
            flush()
            flushes += 1
            time.sleep(random.uniform(0.001, 0.01))

    async def session_work(session: RedisSession) -> int:
        n = 0
        while not stop.is_set():
            await session.add_items(batch(n), idempotency_key=batch_key(n))
            n += 1
            assert stored_batches(await session.get_items()) == list(range(n))
            assert (await session.get_items(limit=1)) == batch(n - 1)[-1:]
            await session.update_metadata({"n": str(n)})
            async with session.lock(timeout=5):
                info = await session.get_info()
                assert info is not None and info.metadata == {"n": str(n)}
        return n

    async def store_work() -> None:
        while not stop.is_set():
            await store.list_sessions(limit=10)
            await store.list_sessions(metadata={"n": "1"})
            await store.count_sessions()
            await store.purge_expired()
            assert await store.ping() is True

    sessions = [store.session(unique_id("flush")) for _ in range(3)]
    flusher = asyncio.create_task(asyncio.to_thread(flush_loop))
    workers = [asyncio.create_task(session_work(s)) for s in sessions]
    lister = asyncio.create_task(store_work())
    try:
        await asyncio.sleep(seconds)
    finally:
        stop.set()
        results = await asyncio.wait_for(
            asyncio.gather(*workers, lister, flusher, return_exceptions=True), 30
        )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == [], errors
    assert flushes > 10
    assert all(n > 0 for n in results[: len(sessions)]), results


@pytest.mark.parametrize("path", PATHS)
async def test_script_flush_in_a_loop_fails_no_call(path: str, redis_server: RedisServer) -> None:
    opened = open_on(path, redis_server)
    admin = redis_server.client()
    try:
        await exercise_while_flushing(opened.store, admin.script_flush)
    finally:
        admin.close()
        await opened.aclose()


@pytest.mark.parametrize("path", PATHS)
async def test_script_flush_on_every_cluster_node_fails_no_call(
    path: str, redis_cluster: ClusterTopology
) -> None:
    prefix = unique_id("cmd")
    client: RedisCluster | None = None
    if path == "url":
        store = RedisStore.from_url(redis_cluster.url, key_prefix=prefix)
    else:
        client = RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in redis_cluster.startup_nodes]
        )
        store = RedisStore(client, key_prefix=prefix)
    admins = [node.client() for node in redis_cluster.nodes]

    def flush_all() -> None:
        for admin in admins:
            admin.script_flush()

    try:
        await exercise_while_flushing(store, flush_all)
    finally:
        for admin in admins:
            admin.close()
        await store.close()
        if client is not None:
            await client.aclose()


# -- 7. out of memory ----------------------------------------------------------------------------


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("path", PATHS)
async def test_a_full_server_refuses_the_batch_as_out_of_memory_and_stores_none_of_it(
    path: str, own_server: RedisServer
) -> None:
    opened = open_on(path, own_server)
    session = opened.store.session(unique_id("oom"))
    try:
        await session.add_items(batch(0), idempotency_key=batch_key(0))
        with own_server.client() as admin:
            admin.config_set("maxmemory-policy", "noeviction")
            used = int(admin.info("memory")["used_memory"])
            admin.config_set("maxmemory", str(used + 2 * 1024 * 1024))
            filler = b"x" * 64 * 1024
            with pytest.raises(OutOfMemoryError):
                for i in range(10_000):
                    admin.set(f"filler:{i}", filler)
            # The refusal counted the request's own buffer (and this connection's): once they
            # are freed the server is under the limit again. Full means well over it.
            used = int(admin.info("memory")["used_memory"])
            admin.config_set("maxmemory", str(used - 512 * 1024))
            with pytest.raises(OutOfMemoryError):
                admin.set("one-more", "x")
        started = time.monotonic()
        with pytest.raises(BackendError) as caught:
            await session.add_items(batch(1), idempotency_key=batch_key(1))
        assert time.monotonic() - started < 2.0, "an out-of-memory reply was retried"
        assert not isinstance(caught.value, BackendUnavailableError)
        assert "out of memory" in str(caught.value)
        assert isinstance(caught.value.__cause__, OutOfMemoryError)
        # Reads still answer, and show nothing of the refused batch.
        assert stored_batches(await session.get_items()) == [0]
        info = await session.get_info()
        assert info is not None and info.item_count == len(batch(0))
        with own_server.client() as admin:
            admin.flushdb()
            admin.config_set("maxmemory", "0")
        # The same session works again; its refused batch was never applied, so it applies.
        await session.add_items(batch(1), idempotency_key=batch_key(1))
        assert stored_batches(await session.get_items()) == [1]
    finally:
        await opened.aclose()


# -- 8. idle connections dropped by the server ---------------------------------------------------


async def call_after_idle_connections_dropped(opened: Opened, server: RedisServer) -> None:
    session = opened.store.session(unique_id("idle"))
    await session.add_items(batch(0), idempotency_key=batch_key(0))
    assert await session.get_items() == batch(0)
    assert connections_named(server, opened.name), "the store holds no connection"
    with server.client() as admin:
        admin.config_set("timeout", "1")
    try:
        deadline = time.monotonic() + 10
        while connections_named(server, opened.name):
            assert time.monotonic() < deadline, "the server kept the idle connections"
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)
        started = time.monotonic()
        await session.add_items(batch(1), idempotency_key=batch_key(1))
        items = await session.get_items()
        took = time.monotonic() - started
    finally:
        with server.client() as admin:
            admin.config_set("timeout", "0")
    assert stored_batches(items) == [0, 1]
    assert took < 1.5, f"{took:.2f} s: a call waited on a dropped connection"


@pytest.mark.parametrize("path", PATHS)
async def test_a_call_after_the_server_dropped_idle_connections_answers_promptly(
    path: str, own_server: RedisServer
) -> None:
    opened = open_on(
        path,
        own_server,
        query="health_check_interval=1&socket_timeout=5",
        health_check_interval=1,
        socket_timeout=5,
    )
    try:
        await call_after_idle_connections_dropped(opened, own_server)
    finally:
        await opened.aclose()


async def test_a_health_check_replaces_a_dropped_idle_connection_even_without_retries(
    own_server: RedisServer,
) -> None:
    opened = open_on("url", own_server, query="health_check_interval=1&socket_timeout=5&retries=0")
    try:
        await call_after_idle_connections_dropped(opened, own_server)
    finally:
        await opened.aclose()


async def test_connections_killed_while_idle_are_replaced_before_sending_without_a_retry(
    own_server: RedisServer,
) -> None:
    """With `retries=0` and no health checks, a call whose connections were all killed while
    idle still succeeds: a store's own connections are checked before a request is written
    to them, as redis-py's pool does when it hands one out. (redis-py's Cluster client hands
    out its idle connections unchecked: there, such a request costs an attempt.)"""
    name = unique_id("lib")
    servers = [own_server]
    store = RedisStore.from_url(
        f"{own_server.url}?client_name={name}&retries=0", key_prefix=unique_id("cmd")
    )
    try:
        sessions = [store.session(unique_id("idle")) for _ in range(4)]
        for session in sessions:
            await session.add_items(batch(0), idempotency_key=batch_key(0))
        killed = 0
        for server in servers:
            with server.client() as admin:
                for entry in admin.client_list():
                    if entry.get("name") == name:
                        killed += int(admin.client_kill_filter(_id=entry["id"]))
        assert killed > 0
        await asyncio.sleep(0.3)  # the loop sees the connections close
        for session in sessions:
            await session.add_items(batch(1), idempotency_key=batch_key(1))
            assert stored_batches(await session.get_items()) == [0, 1]
    finally:
        await store.close()


# -- 9. a storm of cancelled calls ---------------------------------------------------------------


async def storm_of_cancelled_calls(store: RedisStore) -> None:
    """Hundreds of appends and reads cancelled at random moments (`wait_for` with tiny
    timeouts), then every session read back at once: each gets its own items and info, every
    acknowledged batch once, a cancelled one whole or not at all."""
    sessions = [store.session(unique_id("storm")) for _ in range(12)]
    by_id = {s.session_id: s for s in sessions}
    acked: dict[str, set[int]] = {s.session_id: set() for s in sessions}
    maybe: dict[str, set[int]] = {s.session_id: set() for s in sessions}
    rng = random.Random(12)
    for s in sessions:  # every session exists, with a first batch of its own
        await s.add_items(user_items(s.session_id, 0), idempotency_key="0")
        acked[s.session_id].add(0)

    async def one(i: int) -> None:
        s = rng.choice(sessions)
        tiny = rng.choice([0, 0.0001, 0.0005, 0.001, 0.003, 0.01, 0.03, 1.0])
        if rng.random() < 0.5:
            n = i + 1
            try:
                await asyncio.wait_for(
                    s.add_items(user_items(s.session_id, n), idempotency_key=str(n)), tiny
                )
            except asyncio.TimeoutError:
                maybe[s.session_id].add(n)
            else:
                acked[s.session_id].add(n)
        else:
            try:
                got = await asyncio.wait_for(s.get_items(), tiny)
            except asyncio.TimeoutError:
                return
            assert all(item["content"].startswith(s.session_id + "|") for item in got)

    for wave in range(4):
        await asyncio.gather(*(one(wave * 100 + i) for i in range(100)))
    # Both kinds happened: appends cancelled on the way, and appends that completed.
    assert sum(len(m) for m in maybe.values()) > 0
    assert sum(len(a) for a in acked.values()) > len(sessions)

    async def check(s: RedisSession) -> None:
        items, info = await asyncio.gather(s.get_items(), s.get_info())
        assert info is not None and info.session_id == s.session_id
        assert info.item_count == len(items)
        seen: dict[int, list[int]] = {}
        for item in items:
            owner, n, j = item["content"].split("|")
            assert owner == s.session_id, "an item reached another session"
            seen.setdefault(int(n), []).append(int(j))
        assert all(parts == [0, 1] for parts in seen.values()), "a batch split or doubled"
        assert acked[s.session_id] <= set(seen) <= acked[s.session_id] | maybe[s.session_id]

    # Everyone at once, twice: replies must not cross between callers.
    for _ in range(2):
        await asyncio.wait_for(asyncio.gather(*(check(s) for s in sessions)), 30)
    page = await store.list_sessions(limit=100)
    assert {i.session_id for i in page.sessions} == set(by_id)


@pytest.mark.parametrize("path", PATHS)
async def test_after_a_storm_of_cancelled_calls_every_reply_reaches_its_own_caller(
    path: str, redis_server: RedisServer
) -> None:
    opened = open_on(path, redis_server, query="max_connections=16")
    try:
        await storm_of_cancelled_calls(opened.store)
        if path == "url":
            assert len(connections_named(redis_server, opened.name)) <= 16
    finally:
        await opened.aclose()


@pytest.mark.parametrize("path", PATHS)
async def test_after_a_storm_of_cancelled_cluster_calls_every_reply_reaches_its_own_caller(
    path: str, redis_cluster: ClusterTopology
) -> None:
    prefix = unique_id("cmd")
    client: RedisCluster | None = None
    if path == "url":
        store = RedisStore.from_url(redis_cluster.url, key_prefix=prefix)
    else:
        client = RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in redis_cluster.startup_nodes]
        )
        store = RedisStore(client, key_prefix=prefix)
    try:
        await storm_of_cancelled_calls(store)
    finally:
        await store.close()
        if client is not None:
            await client.aclose()


# -- 10. configuration refused at construction ---------------------------------------------------


@pytest.mark.parametrize(
    ("client", "named"),
    [
        (redis.Redis(), "synchronous"),
        ("redis://127.0.0.1:6379/0", "from_url"),
        (object(), "builtins.object"),
    ],
    ids=["sync-client", "string", "object"],
)
def test_a_client_that_is_not_an_asyncio_client_is_refused_at_construction(
    client: Any, named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        RedisSession("s", client=client)
    with pytest.raises(ConfigurationError, match=named):
        RedisStore(client)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("protocol=4", "protocol"),
        ("timeout=-1", "timeout"),
        ("timeout=abc", "timeout"),
        ("timeout=0", "timeout"),
        ("retries=-1", "retries"),
        ("retries=1.5", "retries"),
        ("socket_timeout=-1", "socket_timeout"),
        ("socket_connect_timeout=nan", "socket_connect_timeout"),
        ("health_check_interval=-1", "health_check_interval"),
    ],
)
def test_a_bad_budget_or_protocol_in_the_url_is_refused_naming_it(query: str, named: str) -> None:
    url = f"redis://127.0.0.1:6379/0?{query}"
    for make in (open_store, RedisStore.from_url, lambda u: RedisSession.from_url("s", u)):
        with pytest.raises(ConfigurationError, match=named):
            make(url)


@pytest.mark.parametrize(("keyword", "value"), [("timeout", -1), ("timeout", "abc")])
def test_a_bad_timeout_keyword_is_refused_naming_it(keyword: str, value: Any) -> None:
    client = aioredis.Redis()
    with pytest.raises(ConfigurationError, match=keyword):
        RedisStore.from_url("redis://127.0.0.1:6379/0", **{keyword: value})
    with pytest.raises(ConfigurationError, match=keyword):
        RedisStore(client, **{keyword: value})
    with pytest.raises(ConfigurationError, match=keyword):
        RedisSession("s", client=client, **{keyword: value})


@pytest.fixture(
    params=["url-resp3", "injected-resp3", "injected-decoded", "injected-resp3-decoded"]
)
async def wire_store(
    request: pytest.FixtureRequest, redis_server: RedisServer
) -> AsyncIterator[RedisStore]:
    kind: str = request.param
    prefix = unique_id("wire")
    client: aioredis.Redis | None = None
    if kind == "url-resp3":
        store = RedisStore.from_url(f"{redis_server.url}?protocol=3", key_prefix=prefix)
    else:
        client = aioredis.Redis(
            host=redis_server.host,
            port=redis_server.port,
            protocol=3 if "resp3" in kind else 2,
            decode_responses="decoded" in kind,
        )
        store = RedisStore(client, key_prefix=prefix)
    try:
        yield store
    finally:
        await store.close()
        if client is not None:
            await client.aclose()


async def test_every_operation_round_trips_over_resp3_and_decoded_replies(
    wire_store: RedisStore,
) -> None:
    store = wire_store
    session = store.session("a", ttl=60)
    turn = [
        {"role": "user", "content": "hé"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "42"},
    ]
    await session.add_items(turn, idempotency_key="k")
    await session.add_items(turn, idempotency_key="k")
    assert await session.get_items() == turn
    assert await session.get_items(limit=1) == turn[-1:]
    await session.update_metadata({"user_id": "u1", "gone": "x"})
    await session.update_metadata({"gone": None})
    info = await session.get_info()
    assert info is not None
    assert (info.session_id, info.item_count, info.metadata) == ("a", 3, {"user_id": "u1"})
    assert info.expires_at is not None
    assert await session.touch() is True
    assert await session.pop_item() == turn[-1]
    async with session.lock(timeout=2):
        await session.replace_items(turn[:1])
    copy = await session.fork("b")
    assert await copy.get_items() == turn[:1]
    page = await store.list_sessions(metadata={"user_id": "u1"})
    assert {i.session_id for i in page.sessions} == {"a", "b"}
    assert await store.count_sessions() == 2
    assert (await store.get_info("b")) is not None
    assert await store.purge_expired() == 0
    assert await store.delete_session("b") is True
    await session.clear_session()
    assert await session.get_info() is None
    assert await store.count_sessions() == 0
    assert await store.ping() is True


# -- 11. refused by the server: a read-only replica, a missing permission ------------------------


@pytest.fixture
def replica(own_server: RedisServer) -> Iterator[RedisServer]:
    server = start_redis("--replicaof", own_server.host, str(own_server.port))
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("path", PATHS)
async def test_a_read_only_replica_refuses_writes_and_answers_reads(
    path: str, own_server: RedisServer, replica: RedisServer
) -> None:
    on_master = open_on("url", own_server)
    on_replica = open_on(path, replica, prefix=on_master.store.key_prefix)
    try:
        writer = on_master.store.session("r1")
        await writer.add_items(batch(0), idempotency_key=batch_key(0))
        await writer.update_metadata({"user_id": "u1"})
        with own_server.client() as admin:
            admin.incr("probe")
            assert int(admin.wait(1, 5000)) == 1, "the replica did not catch up"
        reader = on_replica.store.session("r1")
        with pytest.raises(BackendError, match="read-only") as caught:
            await reader.add_items(batch(1), idempotency_key=batch_key(1))
        assert not isinstance(caught.value, BackendUnavailableError)
        assert isinstance(caught.value.__cause__, ReadOnlyError)
        assert stored_batches(await reader.get_items()) == [0]
        assert await reader.get_items(limit=1) == batch(0)[-1:]
        info = await reader.get_info()
        assert info is not None and info.metadata == {"user_id": "u1"}
        assert stored_batches(await writer.get_items()) == [0]
    finally:
        await on_master.aclose()
        await on_replica.aclose()


async def test_a_user_without_the_scripting_permission_gets_a_permission_error(
    redis_server: RedisServer,
) -> None:
    user = unique_id("noscript")
    with redis_server.client() as admin:
        admin.execute_command("ACL", "SETUSER", user, "on", ">pw", "~*", "+@all", "-@scripting")
    try:
        url = f"redis://{user}:pw@{redis_server.host}:{redis_server.port}/0"
        async with open_store(url, key_prefix=unique_id("acl")) as store:
            with pytest.raises(BackendError, match="permission denied") as caught:
                await store.session("s").add_items(batch(0))
            assert not isinstance(caught.value, BackendUnavailableError)
            assert isinstance(caught.value.__cause__, NoPermissionError)
    finally:
        with redis_server.client() as admin:
            admin.execute_command("ACL", "DELUSER", user)
