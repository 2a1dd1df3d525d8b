"""What is specific to Redis: keys and slots, round trips, TTL on every key, scripts, clients."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot

from tests.backends import unique_id
from tests.conformance.test_session_contract import TRICKY_IDS
from tests.faults import DroppingProxy
from tests.servers import RedisServer
from turnstore import ConfigurationError, RedisSession, SessionClosedError
from turnstore.backend import AUTO_TOKEN_TTL_MS, IDEMPOTENCY_TTL_MS
from turnstore.conformance.items import turn, user
from turnstore.redis.keys import CLUSTER_BUCKETS, escape_id, session_keys, unescape_id


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


def all_keys(session: RedisSession) -> list[str]:
    keys = session.keys
    return [keys.items, keys.meta, keys.tokens, keys.lock, keys.bucket.index, keys.bucket.expiry]


# -- key layout ------------------------------------------------------------------------------


@pytest.mark.parametrize("session_id", TRICKY_IDS)
def test_every_key_of_a_session_shares_one_slot(session_id: str) -> None:
    session = RedisSession(session_id, client=aioredis.Redis())
    slots = {key_slot(key.encode()) for key in all_keys(session)}
    assert len(slots) == 1


def test_keys_of_distinct_ids_and_prefixes_never_collide() -> None:
    seen: dict[str, tuple[str, str]] = {}
    for buckets in (1, CLUSTER_BUCKETS):
        seen.clear()
        for prefix in ["turnstore", "turnstore:a", "app", "app:"]:
            for session_id in [*TRICKY_IDS, "turnstore", "s:a", "a:meta"]:
                keys = session_keys(prefix, session_id, buckets)
                for key in (keys.items, keys.meta, keys.tokens, keys.lock):
                    assert key not in seen, (key, seen.get(key), (prefix, session_id))
                    seen[key] = (prefix, session_id)


@pytest.mark.parametrize("session_id", TRICKY_IDS)
def test_escaped_id_round_trips_and_holds_no_braces_or_colons(session_id: str) -> None:
    escaped = escape_id(session_id)
    assert unescape_id(escaped) == session_id
    assert not {"{", "}", ":"} & set(escaped)


@pytest.mark.parametrize("prefix", ["", "a{b", "x}", 5, None])
def test_bad_key_prefix_is_a_configuration_error(prefix: Any) -> None:
    with pytest.raises(ConfigurationError):
        RedisSession("s", client=aioredis.Redis(), key_prefix=prefix)


async def test_cluster_sessions_spread_over_many_hash_tags() -> None:
    slots = {
        key_slot(session_keys("p", f"user-{n}", CLUSTER_BUCKETS).items.encode())
        for n in range(1000)
    }
    assert len(slots) > 200


async def test_items_live_in_one_list_one_json_element_each(client: aioredis.Redis) -> None:
    session = RedisSession(unique_id(), client=client)
    await session.add_items(turn(0))
    assert await client.type(session.keys.items) == b"list"
    raw = await client.lrange(session.keys.items, 0, -1)
    assert len(raw) == 5
    assert raw[0] == b'{"role":"user","content":"question 0"}'


# -- round trips -------------------------------------------------------------------------------


class CountingConnection(Connection):
    """A real connection that counts how many times it sends to the server."""

    sends = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sends += 1
        await super().send_packed_command(command, check_health)


@pytest.fixture
async def counting_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    pool = aioredis.ConnectionPool(
        host="127.0.0.1", port=redis_server.port, connection_class=CountingConnection
    )
    client = aioredis.Redis.from_pool(pool)
    await client.ping()
    yield client
    await client.aclose()


OPERATIONS: dict[str, Any] = {
    "add_items": lambda s: s.add_items(turn(9)),
    "add_items_with_key": lambda s: s.add_items(turn(9), idempotency_key="k"),
    "get_items": lambda s: s.get_items(),
    "get_items_limit": lambda s: s.get_items(limit=3),
    "pop_item": lambda s: s.pop_item(),
    "clear_session": lambda s: s.clear_session(),
    "replace_items": lambda s: s.replace_items(turn(3)),
    "get_info": lambda s: s.get_info(),
    "update_metadata": lambda s: s.update_metadata({"k": "v", "x": None}),
    "touch": lambda s: s.touch(),
}


@pytest.mark.parametrize("ttl", [None, 60])
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
async def test_each_operation_is_one_round_trip(
    counting_client: aioredis.Redis, operation: str, ttl: int | None
) -> None:
    session = RedisSession(unique_id(), client=counting_client, ttl=ttl)
    await session.add_items(turn(0) + turn(1))
    await OPERATIONS[operation](session)  # scripts are now cached on the server
    await session.add_items(turn(2))
    CountingConnection.sends = 0
    await OPERATIONS[operation](session)
    assert CountingConnection.sends == 1


async def test_max_turns_window_is_one_round_trip(counting_client: aioredis.Redis) -> None:
    session = RedisSession(unique_id(), client=counting_client, max_turns=3)
    for n in range(20):
        await session.add_items(turn(n))
    CountingConnection.sends = 0
    assert await session.get_items() == turn(17) + turn(18) + turn(19)
    assert CountingConnection.sends == 1


async def test_scripts_reload_after_script_flush(client: aioredis.Redis) -> None:
    session = RedisSession(unique_id(), client=client)
    await session.add_items([user("a")])
    await client.script_flush()
    await session.add_items([user("b")])
    assert await session.get_items() == [user("a"), user("b")]


# -- TTL ---------------------------------------------------------------------------------------


async def test_ttl_sets_one_deadline_on_every_key(client: aioredis.Redis) -> None:
    session = RedisSession(unique_id(), client=client, ttl=100)
    await session.add_items([user("a")])
    await session.update_metadata({"k": "v"})
    keys = session.keys
    deadlines = [await client.pexpiretime(k) for k in (keys.items, keys.meta)]
    assert len(set(deadlines)) == 1 and deadlines[0] > 0
    score = await client.zscore(keys.bucket.expiry, keys.member)
    assert score == deadlines[0]


async def test_batch_tokens_outlive_their_longest_token(client: aioredis.Redis) -> None:
    session = RedisSession(unique_id(), client=client, ttl=100)
    await session.add_items([user("a")], idempotency_key="k")
    await session.add_items([user("b")])  # an automatic token, shorter-lived
    keys = session.keys
    longest = max(score for _, score in await client.zrange(keys.tokens, 0, -1, withscores=True))
    deadline = await client.pexpiretime(keys.tokens)
    # At most one token lifetime (the key's 24 h) beyond the longest-lived token.
    assert longest <= deadline <= longest + IDEMPOTENCY_TTL_MS
    assert longest > await client.pexpiretime(keys.meta)  # 24 h, beyond the session's TTL


async def test_tokens_deadline_moves_only_when_a_new_token_would_outlive_it(
    client: aioredis.Redis,
) -> None:
    session = RedisSession(unique_id(), client=client)
    keys = session.keys
    await session.add_items([user("a")])
    first = await client.pexpiretime(keys.tokens)
    ((_, token_deadline),) = await client.zrange(keys.tokens, 0, -1, withscores=True)
    assert first == token_deadline + AUTO_TOKEN_TTL_MS
    await session.add_items([user("b")])
    assert await client.pexpiretime(keys.tokens) == first  # not moved: no read-modify
    # A token that would outlive the set moves its deadline past that token.
    await client.pexpire(keys.tokens, 1000)
    await session.add_items([user("c")])
    newest = max(score for _, score in await client.zrange(keys.tokens, 0, -1, withscores=True))
    assert await client.pexpiretime(keys.tokens) == newest + AUTO_TOKEN_TTL_MS


async def test_write_without_ttl_removes_every_deadline(client: aioredis.Redis) -> None:
    session_id = unique_id()
    await RedisSession(session_id, client=client, ttl=100).add_items([user("a")])
    session = RedisSession(session_id, client=client)
    await session.add_items([user("b")])
    keys = session.keys
    assert [await client.pttl(k) for k in (keys.items, keys.meta)] == [-1] * 2
    assert await client.zscore(keys.bucket.expiry, keys.member) is None


async def test_an_append_makes_again_a_hash_evicted_from_under_a_ttl_session(
    client: aioredis.Redis,
) -> None:
    """A volatile-* maxmemory policy may evict the session's hash (it has a TTL) and keep
    its items: the next append with a TTL restores the hash, so the session is listed and
    has info again."""
    session = RedisSession(unique_id(), client=client, ttl=100)
    await session.add_items([user("a")])
    await client.delete(session.keys.meta)  # what an eviction would do
    assert await session.get_info() is None
    await session.add_items([user("b")])
    info = await session.get_info()
    assert info is not None and info.item_count == 2 and info.expires_at is not None
    assert await client.hget(session.keys.meta, "id") == session.session_id.encode()
    assert 0 < await client.pttl(session.keys.meta) <= 100_000


async def test_read_refreshes_deadline_from_server_time(client: aioredis.Redis) -> None:
    session = RedisSession(unique_id(), client=client, ttl=100)
    await session.add_items([user("a")])
    await client.pexpire(session.keys.items, 5000)
    await client.pexpire(session.keys.meta, 5000)
    await session.get_items()
    assert await client.pttl(session.keys.items) > 90_000
    assert await client.pttl(session.keys.meta) > 90_000


# -- batch tokens --------------------------------------------------------------------------------


@pytest.mark.parametrize("driver_retries", [3, 0], ids=["redis-py-retries", "library-retries"])
async def test_a_retry_after_a_lost_reply_does_not_apply_a_batch_twice(
    redis_server: RedisServer, driver_retries: int
) -> None:
    drops = {"left": 1}

    def drop_first_append(request: bytes) -> bool:
        if b"EVALSHA" in request and b"question 1" in request and drops["left"]:
            drops["left"] -= 1
            return True
        return False

    proxy = DroppingProxy(redis_server.port, should_drop=drop_first_append)
    client = aioredis.Redis.from_url(proxy.url, retry=Retry(NoBackoff(), driver_retries))
    try:
        session = RedisSession(unique_id(), client=client)
        await session.add_items(turn(0))
        await session.add_items(turn(1))  # the reply is lost; the command is sent again
        await session.add_items(turn(2))
        assert proxy.dropped == 1
        assert await session.get_items() == turn(0) + turn(1) + turn(2)
    finally:
        await client.aclose()
        proxy.close()


async def test_batch_tokens_expire_and_do_not_pile_up(client: aioredis.Redis) -> None:
    session = RedisSession(unique_id(), client=client)
    for n in range(5):
        await session.add_items([user(str(n))])
    tokens = await client.zrange(session.keys.tokens, 0, -1, withscores=True)
    # Answered appends' tokens went with the next append (see test_batch_tokens.py); the
    # last one expires by itself.
    assert len(tokens) == 1
    now_ms = (await client.time())[0] * 1000
    assert all(now_ms < score <= now_ms + 11 * 60 * 1000 for _, score in tokens)


# -- clients ------------------------------------------------------------------------------------


async def test_injected_client_is_never_closed(client: aioredis.Redis) -> None:
    session = RedisSession(unique_id(), client=client)
    await session.add_items([user("a")])
    await session.close()
    assert await client.ping() is True


async def connections_named(client: aioredis.Redis, name: str) -> int:
    return sum(1 for entry in await client.client_list() if entry.get("name") == name)


async def test_from_url_session_owns_and_closes_its_client(
    redis_server: RedisServer, client: aioredis.Redis
) -> None:
    name = unique_id("owned")
    session = RedisSession.from_url(unique_id(), f"{redis_server.url}?client_name={name}")
    await session.add_items([user("a")])
    assert await session.get_items() == [user("a")]
    assert await connections_named(client, name) >= 1  # it did connect...
    await session.close()
    with pytest.raises(SessionClosedError):
        session.client  # noqa: B018
    await asyncio.sleep(0.05)  # the server notices closed sockets on its next event loop turn
    assert await connections_named(client, name) == 0  # ...and closed every connection


async def test_from_url_reads_options_from_the_query(redis_server: RedisServer) -> None:
    url = f"{redis_server.url}?ttl=30&key_prefix=app&max_turns=2&max_items=50"
    async with RedisSession.from_url(unique_id(), url) as session:
        assert (session.ttl, session.max_turns, session.max_items) == (30, 2, 50)
        assert session.key_prefix == "app"
        await session.add_items([user("a")])
        assert session.keys.items.startswith("app:{")


async def test_from_url_keyword_options_win_over_the_query(redis_server: RedisServer) -> None:
    async with RedisSession.from_url(unique_id(), f"{redis_server.url}?ttl=30", ttl=5) as session:
        assert session.ttl == 5


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0?bogus=1",
        "redis://127.0.0.1:6379/0?ttl=soon",
        "redis://127.0.0.1:6379/zero",
        "http://127.0.0.1:6379/0",
        "redis://127.0.0.1:notaport/0",
        "redis+sentinel://127.0.0.1:26379",
        "redis+cluster://127.0.0.1:7000/3",
        "not a url",
    ],
)
def test_bad_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError):
        RedisSession.from_url("s", url)


def test_password_never_shows_in_errors_or_repr() -> None:
    with pytest.raises(ConfigurationError) as caught:
        RedisSession.from_url("s", "redis://user:s3cr3t-pw@127.0.0.1:6379/0?bogus=1")
    assert "s3cr3t-pw" not in str(caught.value)
    session = RedisSession.from_url("s", "redis://user:s3cr3t-pw@127.0.0.1:6379/0")
    assert "s3cr3t-pw" not in repr(session)
    assert "s3cr3t-pw" not in repr(session.connection.config)


async def test_default_client_comes_from_the_environment(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TURNSTORE_REDIS_URL", redis_server.url)
    async with RedisSession(unique_id()) as session:
        await session.add_items([user("a")])
        assert await session.get_items() == [user("a")]


async def test_one_owned_session_serves_several_event_loops(redis_server: RedisServer) -> None:
    session = RedisSession.from_url(unique_id(), redis_server.url)
    await session.add_items([user("main loop")])
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            asyncio.run(session.add_items([user("other loop")]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(10)
    assert errors == []
    assert await session.get_items() == [user("main loop"), user("other loop")]
    await session.close()


@pytest.mark.parametrize("driver_retries", [3, 0], ids=["redis-py-retries", "library-retries"])
async def test_a_retried_pop_after_a_lost_reply_pops_only_once(
    redis_server: RedisServer, driver_retries: int
) -> None:
    drops = {"left": 1}

    def drop_first_pop(request: bytes) -> bool:
        if b"removed:" in request and drops["left"]:
            drops["left"] -= 1
            return True
        return False

    proxy = DroppingProxy(redis_server.port, should_drop=drop_first_pop)
    client = aioredis.Redis.from_url(proxy.url, retry=Retry(NoBackoff(), driver_retries))
    try:
        session = RedisSession(unique_id(), client=client)
        await session.add_items([user("a"), user("b"), user("c")])
        assert await session.pop_item() == user("c")
        assert proxy.dropped == 1
        assert await session.get_items() == [user("a"), user("b")]
    finally:
        await client.aclose()
        proxy.close()
