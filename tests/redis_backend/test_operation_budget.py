"""Operations of several requests (a listing page on Cluster, a count) have one time budget in
all, and their restarts when Cluster slots move live in the retry module with every other
wait: `retry.run_operation`."""

from __future__ import annotations

import time

import pytest

from tests.backends import unique_id
from tests.faults import silent_listener
from tests.servers import RedisServer
from turnstore import BackendUnavailableError, RedisStore
from turnstore.redis import retry
from turnstore.redis.retry import Budget


async def test_an_operation_that_starts_over_succeeds_once_its_view_is_current(
    redis_server: RedisServer,
) -> None:
    store = RedisStore.from_url(redis_server.url, key_prefix=unique_id("op"))
    tries = 0

    async def operation() -> object:
        nonlocal tries
        tries += 1
        reply = await store.connection.execute("PING")
        if tries < 3:
            raise retry.StartOver("a slot moved")
        return reply

    try:
        assert await retry.run_operation(operation, Budget(timeout=5), "here", "a test") in (
            b"PONG",
            "PONG",
            True,
        )
        assert tries == 3
    finally:
        await store.close()


async def test_an_operation_that_keeps_starting_over_raises_within_its_budget(
    redis_server: RedisServer,
) -> None:
    store = RedisStore.from_url(redis_server.url, key_prefix=unique_id("op"))

    async def operation() -> object:
        await store.connection.execute("PING")
        raise retry.StartOver("slots keep moving")

    started = time.monotonic()
    try:
        with pytest.raises(BackendUnavailableError, match=r"listing a page.*slots keep moving"):
            await retry.run_operation(operation, Budget(timeout=0.5), "here", "listing a page")
    finally:
        await store.close()
    assert time.monotonic() - started < 2.0


async def test_the_requests_of_an_operation_share_its_deadline() -> None:
    """Three requests in a row to a server that never answers: each alone may take the whole
    budget, together they still end when the operation's budget does."""
    with silent_listener() as port:
        store = RedisStore.from_url(
            f"redis://127.0.0.1:{port}/0?timeout=1&socket_timeout=5&retries=0",
            key_prefix=unique_id("op"),
        )
        failures: list[BaseException] = []

        async def operation() -> None:
            for _ in range(3):
                try:
                    await store.connection.execute("PING")
                except BackendUnavailableError as error:
                    failures.append(error)

        started = time.monotonic()
        try:
            await retry.run_operation(operation, store.connection.budget, "here", "a test")
        finally:
            await store.close()
        elapsed = time.monotonic() - started
    assert len(failures) == 3
    # One budget of 1 s in all (each request alone would have taken 1 s: 3 s for three).
    assert elapsed < 2.0, elapsed
