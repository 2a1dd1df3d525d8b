"""Errors raised inside redis-py that are not redis-py's own types, as the transport sees
them: a connection another task closed under it counts as a lost connection; anything else
stays what it is."""

from __future__ import annotations

import asyncio
import sys

import pytest

from tests.servers import RedisServer
from turnstore.redis.transport import _torn_down


@pytest.mark.skipif(
    sys.version_info < (3, 12), reason="asyncio raises this from a closing transport on 3.12+"
)
async def test_a_write_to_a_transport_another_task_closed_counts_as_torn_down(
    redis_server: RedisServer,
) -> None:
    _, writer = await asyncio.open_connection(redis_server.host, redis_server.port)
    writer.close()  # as redis-py's disconnect does, before it awaits wait_closed()
    try:
        with pytest.raises(TypeError) as raised:
            writer.writelines([b"PING\r\n"])
        assert _torn_down(raised.value)
    finally:
        await writer.wait_closed()


async def test_the_same_error_raised_outside_redis_py_and_asyncio_is_not_torn_down() -> None:
    def call_nothing() -> None:
        handler = None
        handler()  # type: ignore[misc]

    with pytest.raises(TypeError) as raised:
        call_nothing()
    assert str(raised.value) == "'NoneType' object is not callable"
    assert not _torn_down(raised.value)
