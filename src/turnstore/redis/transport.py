"""The one way commands reach Redis: a request is a list of commands sent in one round trip,
answered by their replies in the same order, an error reply in its place (as a redis-py
`ResponseError`) rather than raised.

Two implementations, both on redis-py's public client API, so that what redis-py does on its
own command path (connecting and health checks, Sentinel master discovery, TLS, credentials
providers, maintenance notifications, its observability hooks) happens here too:

- `ClientTransport` sends through a client: one command with `execute_command`, several with
  a non-transactional pipeline. It serves injected clients (standalone, Sentinel or Cluster,
  whose own pool and retry policy stay theirs) and the cluster clients a store opens.
- `LaneTransport` serves the standalone and Sentinel clients a store opens itself. A request
  of one command (every session operation is one) goes to one of a small LIFO of redis-py
  single-connection clients on the store's pool, which skips the pool's checkout and release
  on every call (the larger part of redis-py's per-command cost); several commands go through
  a pipeline on the same pool. Together they never hold more than the pool's connections.

A server that lost its script cache (`SCRIPT FLUSH`, a restart, a failover, a new Cluster node)
answers EVALSHA with NOSCRIPT: `Transport.send` sends those commands again as EVAL, which
cannot answer NOSCRIPT and caches the script on that server. This is the only place that
handles it, for every script and every topology.

Retries and the time budget are not here: see retry.py, their one owner.
"""

from __future__ import annotations

import asyncio
import weakref
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from . import scripts
from .retry import attempt_started

__all__ = ["ClientTransport", "Command", "LaneTransport", "Transport", "injected_transport"]

Command = tuple[Any, ...]


class Transport(ABC):
    """Sends requests of commands; one round trip each (a NOSCRIPT reply costs one more)."""

    async def send(self, commands: Sequence[Command], *, route: str | None = None) -> list[Any]:
        """The replies to `commands`, in order, error replies in place.

        `route` (one command only): on Cluster, the command goes to the node that serves the
        key `route`, whatever keys the command names; elsewhere it changes nothing.
        """
        replies = await self._send(commands, route)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            again = await self._send([scripts.as_eval(commands[i]) for i in missing], route)
            for i, reply in zip(missing, again, strict=True):
                replies[i] = reply
        return replies

    @abstractmethod
    async def _send(self, commands: Sequence[Command], route: str | None = None) -> list[Any]: ...

    @abstractmethod
    async def aclose(self) -> None:
        """Release what this transport holds (never an injected client's pool)."""


class ClientTransport(Transport):
    """Requests through a redis-py client's own command path (its pool, its retry policy).

    `limit` bounds the requests in flight (a store's `max_connections`): a Cluster client of
    a store opened by URL would otherwise raise `MaxConnectionsError` under load where a
    standalone store's callers wait.
    """

    def __init__(self, client: Any, *, limit: int | None = None) -> None:
        self._client = client
        self._cluster = isinstance(client, RedisCluster)
        self._initialized = not self._cluster
        self._init_lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(limit) if limit else None

    def client(self) -> Any:
        return self._client

    async def _ready(self) -> Any:
        client = self.client()
        # A Cluster client is initialized once, before any command: redis-py's RedisCluster
        # can fail, or repeat commands, when its first commands run concurrently with its own
        # lazy initialization.
        if not self._initialized:
            async with self._init_lock:
                if not self._initialized:
                    await client.initialize()
                    self._initialized = True
        return client

    async def ready(self) -> Any:
        """The client, initialized (a Cluster client has its slot map)."""
        return await self._ready()

    async def _send(self, commands: Sequence[Command], route: str | None = None) -> list[Any]:
        if self._slots is None:
            return await self._send_now(commands, route)
        waits = self._slots.locked()
        async with self._slots:
            if waits:
                attempt_started()  # the wait for the server starts now, not in the queue
            return await self._send_now(commands, route)

    async def _send_now(self, commands: Sequence[Command], route: str | None) -> list[Any]:
        client = await self._ready()
        try:
            if len(commands) == 1:
                options: dict[str, Any] = {}
                if route is not None and self._cluster:
                    options["target_nodes"] = client.get_node_from_key(route)
                try:
                    return [await client.execute_command(*commands[0], **options)]
                except ResponseError as error:
                    return [error]
            if route is not None:
                raise ValueError("a routed request holds one command")
            pipe = client.pipeline(transaction=False)
            for command in commands:
                # execute_command: a cluster pipeline refuses its evalsha() method, but routes
                # a raw EVALSHA by its first key like any other command.
                pipe.execute_command(*command)
            return list(await pipe.execute(raise_on_error=False))
        except (AttributeError, TypeError) as error:
            if not _torn_down(error):
                raise
            raise RedisConnectionError(f"connection closed while in use: {error}") from error

    async def aclose(self) -> None:
        # Cluster initialization state belongs to the client: a closed client initializes
        # again on its next use.
        self._initialized = not self._cluster


def _torn_down(error: BaseException) -> bool:
    """`error` is redis-py using a connection that a concurrent task is closing.

    redis-py's async `RedisCluster` (8.1.0), after a lost connection to a node, closes that
    node's free connections (`ClusterNode.disconnect_free_connections`) but leaves them in
    its free queue while they close, and on CLUSTERDOWN closes every connection, those in use
    included (`aclose`): another task can write to one of them as it closes. asyncio's
    closing transport then raises "'NoneType' object is not callable" (Python 3.12+, from
    `writelines`), or, once the close finished, redis-py "'NoneType' object has no attribute
    'writelines'". Taken as a lost connection, outcome unknown, so the request is sent again:
    every request of this package is safe to resend (batch tokens, receipts).

    Only a `TypeError` or `AttributeError` about `None` whose innermost frame is in redis-py
    or asyncio counts, so that a bug of this package is never taken for a lost connection.
    """
    if "'NoneType' object" not in str(error):
        return False
    tb = error.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = str(tb.tb_frame.f_globals.get("__name__", ""))
    return module.partition(".")[0] in ("redis", "asyncio")


class LaneTransport(Transport):
    """Single-command requests on redis-py single-connection clients of a pool, up to
    `lane_size` of them; requests of several commands, and single ones while every lane client
    is busy, through the client's own path (`overflow`).

    Each lane client holds one of the pool's connections while it lives: for a store's own
    pool, `lane_size` plus the overflow's limit is the pool's `max_connections`.
    """

    def __init__(self, pool: Any, overflow: ClientTransport, *, lane_size: int) -> None:
        self._pool = pool
        self._overflow = overflow
        self._lane_size = lane_size
        self._idle: list[Any] = []
        self._all: list[Any] = []
        self._closed = False

    async def _send(self, commands: Sequence[Command], route: str | None = None) -> list[Any]:
        # Never Cluster: `route` changes nothing here.
        if len(commands) != 1:
            return await self._overflow._send(commands)
        if self._idle:
            lane_client: Any = self._idle.pop()
        elif len(self._all) < self._lane_size and not self._closed:
            lane_client = aioredis.Redis(connection_pool=self._pool, single_connection_client=True)
            self._all.append(lane_client)
        else:
            return await self._overflow._send(commands)
        try:
            connection = lane_client.connection
            if connection is not None:
                if connection.is_connected:
                    try:
                        # What redis-py's pool checks when it hands out a connection: the
                        # server closed it while idle (or left something unread).
                        if await getattr(connection, _CAN_READ)():
                            raise RedisConnectionError("closed or dirty while idle")
                        if connection.health_check_interval:
                            await connection.check_health()  # a PING when the interval passed
                    except RedisConnectionError:
                        # Nothing was sent yet: connect again rather than spend one of the
                        # call's retries on a connection the server already dropped.
                        await connection.disconnect()
                if not connection.is_connected:
                    # The connection's own connect(): a Sentinel-managed connection asks
                    # the sentinels for the current master there, where the implicit connect
                    # of a send would go back to the address it last had.
                    await connection.connect()
            try:
                reply = await lane_client.execute_command(*commands[0])
            except ResponseError as error:
                reply = error
        except BaseException:
            # Whatever was left unread must never reach the next caller.
            connection = lane_client.connection
            if connection is not None:
                await connection.disconnect(nowait=True)
            raise
        finally:
            if self._closed:
                await lane_client.aclose()
            else:
                self._idle.append(lane_client)
        return [reply]

    def forget(self) -> None:
        """Drop the lane's clients without I/O (their pool is going away with its owner)."""
        self._closed = True
        clients, self._all, self._idle = self._all, [], []
        for lane_client in clients:
            lane_client.connection = None

    async def aclose(self) -> None:
        """Give the lane's connections back to the pool (which its owner then closes)."""
        self._closed = True
        clients, self._all, self._idle = self._all, [], []
        for lane_client in clients:
            await lane_client.aclose()
        await self._overflow.aclose()


#: redis-py 8 renamed the check its pool runs on a connection it hands out (`can_read`);
#: earlier versions call it `can_read_destructive`.
_CAN_READ = "can_read" if hasattr(aioredis.Connection, "can_read") else "can_read_destructive"

#: The lanes of injected clients, one per client, shared by every session and store that
#: uses it, and gone with it. A lane holds the client's pool, never the client itself.
_INJECTED_LANES: weakref.WeakKeyDictionary[Any, LaneTransport] = weakref.WeakKeyDictionary()

#: At most this many connections of an injected client's pool are held by its lane.
INJECTED_LANE_SIZE = 16


class _WeakClientTransport(ClientTransport):
    """`ClientTransport` over a client it does not keep alive."""

    def __init__(self, client: Any) -> None:
        super().__init__(None)
        self._ref = weakref.ref(client)

    def client(self) -> Any:
        client = self._ref()
        if client is None:  # only a transport whose every user is gone could see this
            raise RuntimeError("the injected client was garbage-collected")
        return client


def injected_transport(client: Any) -> Transport:
    """The transport for an injected client: its own path for a Cluster client or a
    single-connection one; otherwise a lane of up to `INJECTED_LANE_SIZE` single-connection
    clients of its pool (a quarter of the pool at most), shared by everyone who uses it, with
    its own path for the rest."""
    if isinstance(client, RedisCluster) or getattr(client, "single_connection_client", False):
        return ClientTransport(client)
    lane = _INJECTED_LANES.get(client)
    if lane is None:
        pool = client.connection_pool
        size = min(INJECTED_LANE_SIZE, int(getattr(pool, "max_connections", 4)) // 4)
        if size < 1:
            return ClientTransport(client)
        lane = LaneTransport(pool, _WeakClientTransport(client), lane_size=size)
        _INJECTED_LANES[client] = lane
        # When the client goes, its lane goes too: its single-connection clients let go of
        # their connections (the pool's, closed with it), so that redis-py does not report
        # each of them as an unclosed client.
        weakref.finalize(client, lane.forget)
    return lane
