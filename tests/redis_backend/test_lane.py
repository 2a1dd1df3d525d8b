"""The direct lane (`turnstore.redis.lane`): the connections that sessions of a store
opened by URL send on. Real servers only; connections are counted by the server, by client
name, not by looking inside the lane."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tests.backends import unique_id
from tests.servers import RedisServer, SentinelTopology
from turnstore import RedisStore
from turnstore.conformance.items import user
from turnstore.redis import lane as lane_module
from turnstore.redis.lane import Lane


async def connections_named(admin: aioredis.Redis, name: str) -> int:
    return sum(1 for entry in await admin.client_list() if entry.get("name") == name)


@pytest.fixture
async def admin(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    async with aioredis.Redis(host=redis_server.host, port=redis_server.port) as client:
        yield client


def open_store(server: RedisServer, name: str, query: str = "", **options: Any) -> RedisStore:
    url = f"{server.url}?client_name={name}{query}"
    return RedisStore.from_url(url, key_prefix=name, **options)


def lane_of(store: RedisStore) -> Lane:
    lane = store.connection.lane()
    assert lane is not None
    return lane


async def test_sequential_calls_reuse_one_connection(
    redis_server: RedisServer, admin: aioredis.Redis
) -> None:
    name = unique_id("seq")
    async with open_store(redis_server, name) as store:
        session = store.session("s")
        for n in range(20):
            await session.add_items([user(f"m{n}")])
            assert len(await session.get_items()) == n + 1
        # The store's client pool opened none: sessions send on the lane only.
        assert await connections_named(admin, name) == 1


async def test_concurrent_callers_never_exceed_max_connections(
    redis_server: RedisServer, admin: aioredis.Redis
) -> None:
    name = unique_id("bound")
    async with open_store(redis_server, name, max_connections=3) as store:
        sessions = [store.session(f"s{n}") for n in range(50)]

        async def talk(session: Any) -> None:
            for n in range(5):
                await session.add_items([user(f"m{n}")])
                await session.get_items(limit=2)

        await asyncio.gather(*(talk(s) for s in sessions))
        assert await connections_named(admin, name) == 3
        for session in sessions:
            assert len(await session.get_items()) == 5


async def test_a_caller_beyond_the_limit_waits_up_to_the_pool_timeout(
    redis_server: RedisServer,
) -> None:
    name = unique_id("wait")
    async with open_store(redis_server, name, "&timeout=0.2", max_connections=1) as store:
        lane = lane_of(store)
        held = asyncio.create_task(lane.call("BLPOP", unique_id("nothing"), 2))
        await asyncio.sleep(0.1)  # the only connection is now busy for 2 s
        with pytest.raises(RedisConnectionError, match="No connection available"):
            await lane.call("PING")
        assert await held is None  # BLPOP timed out normally
        assert await lane.call("PING") == b"PONG"


async def test_an_error_reply_leaves_the_connection_usable(
    redis_server: RedisServer, admin: aioredis.Redis
) -> None:
    name = unique_id("err")
    async with open_store(redis_server, name) as store:
        lane = lane_of(store)
        await lane.call("SET", f"{name}:k", "v")
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await lane.call("LPUSH", f"{name}:k", "x")
        assert await lane.call("GET", f"{name}:k") == b"v"
        replies = await lane.execute([("GET", f"{name}:k"), ("INCR", f"{name}:k"), ("PING",)])
        assert replies[0] == b"v" and isinstance(replies[1], ResponseError)
        assert replies[2] == b"PONG"
        assert await connections_named(admin, name) == 1


async def test_a_cancelled_call_never_hands_its_reply_to_the_next_caller(
    redis_server: RedisServer, admin: aioredis.Redis
) -> None:
    name = unique_id("cancel")
    async with open_store(redis_server, name, max_connections=1) as store:
        lane = lane_of(store)
        waiting = asyncio.create_task(lane.call("BLPOP", f"{name}:list", 5))
        await asyncio.sleep(0.1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # The reply to the cancelled BLPOP would be this element, had its connection stayed.
        await admin.rpush(f"{name}:list", "for-the-cancelled-call")
        await lane.call("SET", f"{name}:k", "mine")
        assert await lane.call("GET", f"{name}:k") == b"mine"
        assert await admin.llen(f"{name}:list") == 1  # nobody popped it


async def test_connections_killed_by_the_server_are_replaced(
    redis_server: RedisServer, admin: aioredis.Redis
) -> None:
    name = unique_id("killed")
    async with open_store(redis_server, name, max_connections=4) as store:
        sessions = [store.session(f"s{n}") for n in range(8)]
        await asyncio.gather(*(s.add_items([user("a")]) for s in sessions))
        assert await connections_named(admin, name) == 4
        killed = 0
        for entry in await admin.client_list():
            if entry.get("name") == name:
                await admin.client_kill_filter(_id=entry["id"])
                killed += 1
        assert killed == 4
        await asyncio.gather(*(s.add_items([user("b")]) for s in sessions))
        for session in sessions:
            assert await session.get_items() == [user("a"), user("b")]


async def test_a_reply_slower_than_the_socket_timeout_raises_a_timeout(
    redis_server: RedisServer,
) -> None:
    name = unique_id("slow")
    async with open_store(redis_server, name, "&socket_timeout=0.2") as store:
        lane = lane_of(store)
        started = time.monotonic()
        # The server would answer BLPOP after 10 s; every attempt gives up after 0.2 s.
        with pytest.raises(RedisTimeoutError, match="Timeout reading"):
            await lane.call("BLPOP", f"{name}:empty", 10)
        assert time.monotonic() - started < 8
        # The timed-out connections were dropped (the server let go of their BLPOPs), and
        # the lane answers again on fresh ones.
        assert await lane.call("PING") == b"PONG"
        assert await lane.call("LPUSH", f"{name}:empty", "x") == 1
        assert await lane.call("LLEN", f"{name}:empty") == 1


async def test_a_timed_out_append_is_sent_again_and_applied_once(
    redis_server: RedisServer, admin: aioredis.Redis
) -> None:
    name = unique_id("paused")
    async with open_store(redis_server, name, "&socket_timeout=0.2") as store:
        session = store.session("s")
        await session.add_items([user("before")])
        # Writes wait on the server for 0.7 s: the first sends of the append time out.
        await admin.execute_command("CLIENT", "PAUSE", 700, "WRITE")
        started = time.monotonic()
        await session.add_items([user("during")])
        assert time.monotonic() - started >= 0.4
        assert await session.get_items() == [user("before"), user("during")]


async def test_every_session_call_is_one_request_on_the_lane(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    real_send = lane_module._send

    async def counting_send(connection: Any, packed: list[bytes]) -> None:
        sent.append(len(packed))
        await real_send(connection, packed)

    monkeypatch.setattr(lane_module, "_send", counting_send)
    async with open_store(redis_server, unique_id("count"), ttl=60) as store:
        session = store.session("s")
        await session.add_items([user("a"), user("b")])  # loads the scripts
        await session.get_items(limit=1)
        await session.pop_item()
        await session.add_items([user("b")])
        operations = {
            "add_items": lambda: session.add_items([user("c")]),
            "get_items": lambda: session.get_items(),
            "get_items(limit)": lambda: session.get_items(limit=1),
            "pop_item": lambda: session.pop_item(),
            "get_info": lambda: session.get_info(),
            "update_metadata": lambda: session.update_metadata({"k": "v"}),
            "touch": lambda: session.touch(),
            "replace_items": lambda: session.replace_items([user("x")]),
            "clear_session": lambda: session.clear_session(),
        }
        for call in operations.values():
            await call()  # the server now has every script
        await session.add_items([user("a"), user("b")])
        for operation, call in operations.items():
            sent.clear()
            await call()
            assert len(sent) == 1, operation


async def test_a_large_request_waits_for_the_socket_and_arrives_whole(
    redis_server: RedisServer,
) -> None:
    # Several MiB do not fit the socket's buffer at once: the write waits (with the socket
    # timeout) instead of returning at once.
    big = [user("x" * (3 * 1024 * 1024)), user("y" * (3 * 1024 * 1024))]
    async with open_store(redis_server, unique_id("big")) as store:
        session = store.session("s")
        await session.add_items(big)
        assert await session.get_items() == big


async def test_the_lane_is_closed_with_its_store(
    redis_server: RedisServer, admin: aioredis.Redis
) -> None:
    name = unique_id("closed")
    store = open_store(redis_server, name)
    session = store.session("s")
    await session.add_items([user("a")])
    lane = lane_of(store)
    await store.close()
    await asyncio.sleep(0.05)
    assert await connections_named(admin, name) == 0
    with pytest.raises(RedisConnectionError, match="closed"):
        await lane.call("PING")


async def test_a_store_sends_its_own_calls_on_the_lane_too(
    redis_server: RedisServer, admin: aioredis.Redis
) -> None:
    """Listing, counting, purging, locks and ping use the lane's connections, not a pool
    beside it: a store holds at most `max_connections` connections."""
    name = unique_id("own")
    async with open_store(redis_server, name, max_connections=2) as store:
        sessions = [store.session(f"s{n}") for n in range(3)]
        await sessions[0].add_items([user("kept")])
        await sessions[1].add_items([user("short")])
        await sessions[2].add_items([user("locked")])
        async with sessions[2].lock(timeout=5):
            assert await store.ping()
            assert await store.count_sessions() == 3
            listed = await store.list_sessions()
            assert sorted(info.session_id for info in listed.sessions) == ["s0", "s1", "s2"]
            assert await store.purge_expired() == 0
            assert sorted(await store.session_ids()) == ["s0", "s1", "s2"]
            assert await store.delete_session("s1") is True
        assert await connections_named(admin, name) == 1


async def test_injected_clients_have_no_lane(admin: aioredis.Redis) -> None:
    store = RedisStore(admin, key_prefix=unique_id("inj"))
    assert store.connection.lane() is None


async def test_sentinel_lane_connections_go_to_the_master(
    redis_sentinel: SentinelTopology,
) -> None:
    # A Sentinel-managed connection must be connected by its own connect(), which asks the
    # sentinels: redis-py's implicit connect would go to localhost:6379 (the machine's own
    # Redis, here) and the write would land there.
    name = unique_id("sentinel")
    async with RedisStore.from_url(redis_sentinel.url, key_prefix=name) as store:
        session = store.session("s")
        await session.add_items([user("a")])
        master = redis_sentinel.master
        async with aioredis.Redis(host=master.host, port=master.port) as on_master:
            assert await on_master.llen(session.keys.items) == 1
