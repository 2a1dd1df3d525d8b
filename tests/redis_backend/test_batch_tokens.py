"""What a Redis session keeps of its batch tokens: the token of an append that went out once
and was answered is forgotten by the writer's next append (no copy of that request is left
to recognize), while the token of an append that was sent again, or that a driver may have
resent on its own, and every `idempotency_key`, stay for their whole window."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tests.backends import unique_id
from tests.faults import DroppingProxy
from tests.redis_backend.batches import batch, batch_key, stored_batches
from tests.servers import RedisServer
from turnstore import RedisSession, RedisStore


def tokens_of(server: RedisServer, session: RedisSession) -> list[bytes]:
    with server.client() as admin:
        return list(admin.zrange(session.keys.tokens, 0, -1))


async def test_a_writer_keeps_only_the_token_of_its_last_answered_append(
    redis_server: RedisServer,
) -> None:
    store = RedisStore.from_url(redis_server.url, key_prefix=unique_id("tok"))
    try:
        session = store.session(unique_id("s"))
        for n in range(20):
            await session.add_items(batch(n))
        assert stored_batches(await session.get_items()) == list(range(20))
        assert len(tokens_of(redis_server, session)) == 1
    finally:
        await store.close()


async def test_idempotency_keys_are_kept_for_their_whole_window(
    redis_server: RedisServer,
) -> None:
    store = RedisStore.from_url(redis_server.url, key_prefix=unique_id("tok"))
    try:
        session = store.session(unique_id("s"))
        for n in range(5):
            await session.add_items(batch(n), idempotency_key=batch_key(n))
        await session.add_items(batch(5))
        await session.add_items(batch(6))
        kept = tokens_of(redis_server, session)
        assert {b"k:" + batch_key(n).encode() for n in range(5)} <= set(kept)
        assert len(kept) == 6  # the five keys and the last automatic token
        # And each key is still recognized: resending any of them adds nothing.
        await session.add_items(batch(2), idempotency_key=batch_key(2))
        assert stored_batches(await session.get_items()) == list(range(7))
    finally:
        await store.close()


async def test_an_append_sent_again_keeps_its_token_and_applies_once(
    redis_server: RedisServer,
) -> None:
    """The first append's reply is dropped (the server ran it): the library sends it again,
    which the kept token turns into a no-op; that token is not forgotten afterwards, since
    the first copy could still have been on its way."""
    appends = 0

    def drop_first_append(request: bytes) -> bool:
        nonlocal appends
        if b"EVALSHA" in request.upper() and b"b:" in request:
            appends += 1
            return appends == 1
        return False

    proxy = DroppingProxy(redis_server.port, should_drop=drop_first_append)
    store = RedisStore.from_url(proxy.url, key_prefix=unique_id("tok"))
    try:
        session = store.session(unique_id("s"))
        await session.add_items(batch(0))
        assert proxy.dropped == 1
        resent = tokens_of(redis_server, session)
        assert len(resent) == 1
        await session.add_items(batch(1))
        await session.add_items(batch(2))
        kept = tokens_of(redis_server, session)
        assert resent[0] in kept
        assert len(kept) == 2  # the resent one and the last one
        assert stored_batches(await session.get_items()) == [0, 1, 2]
    finally:
        await store.close()
        proxy.close()


async def test_an_injected_client_that_resends_by_itself_keeps_every_token(
    redis_server: RedisServer,
) -> None:
    client = aioredis.Redis(
        host=redis_server.host, port=redis_server.port, retry=Retry(NoBackoff(), 3)
    )
    try:
        session = RedisSession(unique_id("s"), client=client, key_prefix=unique_id("tok"))
        for n in range(5):
            await session.add_items(batch(n))
        # The driver may have resent any of them without the library seeing it.
        assert len(tokens_of(redis_server, session)) == 5
    finally:
        await client.aclose()


async def test_an_injected_client_without_retries_forgets_answered_tokens(
    redis_server: RedisServer,
) -> None:
    client = aioredis.Redis(
        host=redis_server.host, port=redis_server.port, retry=Retry(NoBackoff(), 0)
    )
    try:
        session = RedisSession(unique_id("s"), client=client, key_prefix=unique_id("tok"))
        for n in range(5):
            await session.add_items(batch(n))
        assert len(tokens_of(redis_server, session)) == 1
    finally:
        await client.aclose()
