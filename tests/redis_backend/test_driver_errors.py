"""Errors raised inside redis-py that are not redis-py's own types, as a caller sees them:
a write to a connection that another task is closing counts as a lost connection (sent
again); a `TypeError` of anybody else's code reaches the caller unchanged."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tests.servers import RedisServer
from turnstore import RedisStore
from turnstore.conformance.items import user


def single_connection_client(server: RedisServer, cls: type[Any] = aioredis.Redis) -> Any:
    """An injected client on one connection that leaves resending to the library (so the
    library's transport and retry, not redis-py's pool, decide what a failure means)."""
    return cls(
        host=server.host,
        port=server.port,
        single_connection_client=True,
        retry=Retry(NoBackoff(), 0),
    )


async def test_a_call_on_a_connection_another_task_is_closing_is_sent_again(
    redis_server: RedisServer,
) -> None:
    # What redis-py's cluster client does to a node's free connections after a lost one:
    # it closes them while another task may be writing to one. On Python 3.12+ asyncio's
    # closing transport raises a bare TypeError ("'NoneType' object is not callable") from
    # that write; earlier Pythons report the lost connection as such.
    client = single_connection_client(redis_server)
    store = RedisStore(client, key_prefix="torn")
    try:
        session = store.session("s")
        await session.add_items([user("hi")])
        closing = asyncio.create_task(client.connection.disconnect())
        await asyncio.sleep(0)  # the close has begun: the transport is closing, not yet gone
        assert await session.get_items() == [user("hi")]
        await closing
        await store.delete_session("s")
    finally:
        await store.close()
        await client.aclose()


class InstrumentedRedis(aioredis.Redis):  # type: ignore[misc]
    """A user's client subclass with a bug of its own: a hook that was never set."""

    hook: Any = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.hook(args)
        return await super().execute_command(*args, **options)


async def test_a_type_error_of_the_clients_own_code_reaches_the_caller_unchanged(
    redis_server: RedisServer,
) -> None:
    client = single_connection_client(redis_server, InstrumentedRedis)
    store = RedisStore(client, key_prefix="torn")
    try:
        with pytest.raises(TypeError, match="'NoneType' object is not callable"):
            await store.session("s").get_items()
    finally:
        await store.close()
        await client.aclose()
