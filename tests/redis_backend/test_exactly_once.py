"""Exactly-once appends and pops when replies are lost (SPEC section 2, `add_items`, `pop_item`).

A `DroppingProxy` sits between redis-py and a real redis-server (one proxy per node of a
Cluster). It forwards every request, so the server runs it, but for a seeded share of the
scripts it drops the reply and closes the connection: the client cannot know whether its write
happened. Now and then an *outage* drops `WRITE_ATTEMPTS` replies in a row, as many as the
library's own attempts, so that a call of a client without driver retries fails to its caller.

Every test runs the same scenario, concurrently, through four clients: standalone and Cluster,
each with no driver retries (only the library resends, with the same batch token or pop
receipt) and with driver retries like those of the clients the library opens (redis-py resends
first). Each scenario prints what the proxy did and what was stored (`pytest -s`).
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis import __version__ as redis_py_version
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import FullJitterBackoff, NoBackoff

from tests.backends import unique_id
from tests.conftest import cluster_client
from tests.faults import DroppingProxy
from tests.servers import ClusterTopology, RedisServer
from turnstore import BackendUnavailableError, RedisSession
from turnstore.conformance.items import turn, user
from turnstore.redis.retry import DEFAULT_BUDGET

WRITE_ATTEMPTS = DEFAULT_BUDGET.retries + 1

BATCHES = 150
POPS = 60
DROP_RATE = 0.25
#: Share of scripts that start an outage of WRITE_ATTEMPTS lost replies in a row.
OUTAGE_RATE = 0.025
SEED = 1
#: What a call raises when its outcome is still unknown after every retry.
OUTCOME_UNKNOWN = (BackendUnavailableError,)
KEY_PREFIX = "exactly-once"


class ReplyLoss:
    """Which replies the proxies drop: script (EVALSHA) replies only, at a seeded rate, and
    outages. One instance serves every proxy of a client (each proxy runs in its own thread)."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)
        self._outage_left = 0
        self._guard = threading.Lock()

    def __call__(self, request: bytes) -> bool:
        if b"EVALSHA" not in request.upper():
            return False
        with self._guard:
            if self._outage_left:
                self._outage_left -= 1
                return True
            if self._random.random() < OUTAGE_RATE:
                self._outage_left = WRITE_ATTEMPTS - 1
                return True
            return self._random.random() < DROP_RATE


@dataclass
class FaultyClient:
    """A client whose every connection goes through dropping proxies, and a direct one."""

    name: str
    client: Any  # through the proxies
    direct: Any  # straight to the server(s): what was really stored
    proxies: list[DroppingProxy]

    @property
    def dropped(self) -> int:
        return sum(proxy.dropped for proxy in self.proxies)

    @property
    def library_retries_only(self) -> bool:
        return self.name.endswith("library-retries")

    def session(self, session_id: str) -> RedisSession:
        return RedisSession(session_id, client=self.client, key_prefix=KEY_PREFIX)

    def stored(self, session_id: str) -> RedisSession:
        return RedisSession(session_id, client=self.direct, key_prefix=KEY_PREFIX)

    async def receipts(self, session_id: str) -> list[dict[str, Any]]:
        """The items that the session's pop receipts say were removed."""
        pattern = self.stored(session_id).keys.receipt("*")
        removed = []
        async for key in self.direct.scan_iter(match=pattern):
            receipt: bytes = await self.direct.get(key)
            removed.append(json.loads(receipt.split(b"\n", 1)[1]))
        return removed

    def report(self, scenario: str, **numbers: int) -> str:
        line = f"[{scenario} {self.name}] " + " ".join(f"{k}={v}" for k, v in numbers.items())
        print(line)
        return line

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.direct.aclose()
        for proxy in self.proxies:
            proxy.close()


def retry_policy(driver_retries: bool) -> Retry:
    if not driver_retries:
        return Retry(NoBackoff(), 0)
    # As the library's own clients retry (`default_retry()`), with shorter pauses: the pauses
    # change nothing about what is resent, and keep the test quick.
    return Retry(FullJitterBackoff(cap=0.05, base=0.005), 3)


def retries_name(driver_retries: bool) -> str:
    return "driver-retries" if driver_retries else "library-retries"


def through_standalone(server: RedisServer, driver_retries: bool) -> FaultyClient:
    proxy = DroppingProxy(server.port, should_drop=ReplyLoss(SEED))
    client = aioredis.Redis.from_url(proxy.url, retry=retry_policy(driver_retries))
    direct = aioredis.Redis.from_url(server.url)
    return FaultyClient(f"standalone/{retries_name(driver_retries)}", client, direct, [proxy])


def through_cluster(topology: ClusterTopology, driver_retries: bool) -> FaultyClient:
    """A proxy per node; the client maps the addresses the nodes announce to their proxies."""
    loss = ReplyLoss(SEED)
    proxies = {node.port: DroppingProxy(node.port, should_drop=loss) for node in topology.nodes}

    def to_proxy(address: tuple[str, int]) -> tuple[str, int]:
        host, port = address
        return ("127.0.0.1", proxies[port].port) if port in proxies else (host, port)

    # Before redis-py 6 the cluster client resent on connection errors as many times as
    # `cluster_error_retry_attempts` says, whatever its `retry`; since, `retry` decides.
    older: dict[str, Any] = {}
    if int(redis_py_version.split(".")[0]) < 6:
        older["cluster_error_retry_attempts"] = 3 if driver_retries else 0
    client = RedisCluster(
        startup_nodes=[ClusterNode("127.0.0.1", proxy.port) for proxy in proxies.values()],
        address_remap=to_proxy,
        retry=retry_policy(driver_retries),
        **older,
    )
    return FaultyClient(
        f"cluster/{retries_name(driver_retries)}",
        client,
        cluster_client(topology),
        list(proxies.values()),
    )


@pytest.fixture
async def faulty_clients(
    redis_server: RedisServer, redis_cluster: ClusterTopology
) -> AsyncIterator[list[FaultyClient]]:
    clients = [through_standalone(redis_server, retries) for retries in (False, True)]
    clients += [through_cluster(redis_cluster, retries) for retries in (False, True)]
    try:
        yield clients
    finally:
        for faulty in clients:
            await faulty.aclose()


async def through_each(
    clients: list[FaultyClient], scenario: Callable[[FaultyClient], Awaitable[None]]
) -> None:
    """Run `scenario` through every client at once; fail with the first failure (if any)."""
    outcomes = await asyncio.gather(*(scenario(c) for c in clients), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


def batch_numbers(items: list[dict[str, Any]]) -> list[int]:
    """The number of every stored batch, in order (each `turn(n)` starts with "question n")."""
    return [int(item["content"].split()[1]) for item in items if item.get("role") == "user"]


async def test_keyed_batches_resent_by_the_caller_are_stored_once_each_in_order(
    faulty_clients: list[FaultyClient],
) -> None:
    async def scenario(faulty: FaultyClient) -> None:
        session_id = unique_id()
        session = faulty.session(session_id)
        caller_retries = 0
        for n in range(BATCHES):
            while True:
                try:
                    await session.add_items(turn(n), idempotency_key=f"turn-{n}")
                    break
                except OUTCOME_UNKNOWN:
                    caller_retries += 1  # what a caller should do: resend with the same key

        stored = await faulty.stored(session_id).get_items()
        numbers = faulty.report(
            "keyed",
            batches=BATCHES,
            dropped_replies=faulty.dropped,
            caller_retries=caller_retries,
            stored_items=len(stored),
            stored_batches=len(batch_numbers(stored)),
        )
        assert stored == [item for n in range(BATCHES) for item in turn(n)], numbers
        # The server ran every script whose reply was dropped: each drop is a write that
        # the next attempt had to recognize as already applied.
        assert faulty.dropped >= 20, numbers
        if faulty.library_retries_only:
            assert caller_retries > 0, f"no call failed to the caller; {numbers}"

    await through_each(faulty_clients, scenario)


async def test_unkeyed_batches_are_never_duplicated_nor_missing_unless_the_call_raised(
    faulty_clients: list[FaultyClient],
) -> None:
    async def scenario(faulty: FaultyClient) -> None:
        session_id = unique_id()
        session = faulty.session(session_id)
        raised: set[int] = set()
        for n in range(BATCHES):
            try:
                await session.add_items(turn(n))
            except OUTCOME_UNKNOWN:
                raised.add(n)  # outcome unknown; without a key a resend could duplicate

        stored = batch_numbers(await faulty.stored(session_id).get_items())
        numbers = faulty.report(
            "unkeyed",
            batches=BATCHES,
            dropped_replies=faulty.dropped,
            calls_raised=len(raised),
            raised_but_stored=len(raised & set(stored)),
            stored_batches=len(stored),
        )
        assert len(stored) == len(set(stored)), f"a batch was stored twice; {numbers}"
        assert stored == sorted(stored), f"batches out of order; {numbers}"
        returned = set(range(BATCHES)) - raised
        assert returned <= set(stored), f"a call returned but its batch is missing; {numbers}"
        assert faulty.dropped >= 20, numbers
        if faulty.library_retries_only:
            assert raised, f"no call failed to the caller; {numbers}"

    await through_each(faulty_clients, scenario)


async def test_sequential_pops_never_return_an_item_twice_nor_lose_one_silently(
    faulty_clients: list[FaultyClient],
) -> None:
    async def scenario(faulty: FaultyClient) -> None:
        session_id = unique_id()
        items = [user(f"item {n}") for n in range(POPS)]
        await faulty.stored(session_id).add_items(items)  # filled without faults
        session = faulty.session(session_id)
        popped: list[dict[str, Any]] = []
        raised = 0
        while True:
            try:
                item = await session.pop_item()
            except OUTCOME_UNKNOWN:
                raised += 1  # that pop may have removed an item its caller never saw
                continue
            if item is None:
                break
            popped.append(item)

        left = await faulty.stored(session_id).get_items()
        unseen = [item for item in items if item not in popped]
        numbers = faulty.report(
            "pops",
            items=POPS,
            dropped_replies=faulty.dropped,
            pops_returned=len(popped),
            pops_raised=raised,
            removed_unseen=len(unseen),
            left_stored=len(left),
        )
        assert left == [], numbers
        contents = [item["content"] for item in popped]
        assert len(contents) == len(set(contents)), f"an item was popped twice; {numbers}"
        positions = [items.index(item) for item in popped]
        assert positions == sorted(positions, reverse=True), f"not newest first; {numbers}"
        # An item nobody saw was removed by a pop that raised, and that pop's receipt has it.
        assert len(unseen) <= raised, f"a pop that returned lost an item; {numbers}"
        receipts = await faulty.receipts(session_id)
        assert all(item in receipts for item in unseen), numbers
        assert faulty.dropped >= 10, numbers

    await through_each(faulty_clients, scenario)
