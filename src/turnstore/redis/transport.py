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
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, ResponseError

from . import scripts

__all__ = ["ClientTransport", "Command", "LaneTransport", "Transport"]

Command = tuple[Any, ...]


class Transport(ABC):
    """Sends requests of commands; one round trip each (a NOSCRIPT reply costs one more)."""

    async def send(self, commands: Sequence[Command]) -> list[Any]:
        """The replies to `commands`, in order, error replies in place."""
        replies = await self._send(commands)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            again = await self._send([scripts.as_eval(commands[i]) for i in missing])
            for i, reply in zip(missing, again, strict=True):
                replies[i] = reply
        return replies

    @abstractmethod
    async def _send(self, commands: Sequence[Command]) -> list[Any]: ...

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
        self.client = client
        self._cluster = isinstance(client, RedisCluster)
        self._initialized = not self._cluster
        self._init_lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(limit) if limit else None

    async def _ready(self) -> Any:
        # A Cluster client is initialized once, before any command: redis-py's RedisCluster
        # can fail, or repeat commands, when its first commands run concurrently with its own
        # lazy initialization.
        if not self._initialized:
            async with self._init_lock:
                if not self._initialized:
                    await self.client.initialize()
                    self._initialized = True
        return self.client

    async def _send(self, commands: Sequence[Command]) -> list[Any]:
        if self._slots is None:
            return await self._send_now(commands)
        async with self._slots:
            return await self._send_now(commands)

    async def _send_now(self, commands: Sequence[Command]) -> list[Any]:
        client = await self._ready()
        if len(commands) == 1:
            try:
                return [await client.execute_command(*commands[0])]
            except ResponseError as error:
                return [error]
        pipe = client.pipeline(transaction=False)
        for command in commands:
            # execute_command: a cluster pipeline refuses its evalsha() method, but routes a
            # raw EVALSHA by its first key like any other command.
            pipe.execute_command(*command)
        return list(await pipe.execute(raise_on_error=False))

    async def aclose(self) -> None:
        # Cluster initialization state belongs to the client: a closed client initializes
        # again on its next use.
        self._initialized = not self._cluster


class LaneTransport(Transport):
    """Single-command requests on redis-py single-connection clients of the store's pool;
    requests of several commands through a pipeline on the same pool.

    `lane_size + pipelines` must not exceed the pool's `max_connections`: each lane client
    holds one of the pool's connections while it lives, each pipeline borrows one.
    """

    def __init__(self, client: aioredis.Redis, *, lane_size: int, pipelines: int) -> None:
        self.client = client
        self._pool = client.connection_pool
        self._idle: list[Any] = []
        self._all: list[Any] = []
        self._lane = asyncio.Semaphore(lane_size)
        self._pipelines = ClientTransport(client, limit=pipelines)
        self._closed = False

    async def _send(self, commands: Sequence[Command]) -> list[Any]:
        if len(commands) != 1:
            return await self._pipelines._send(commands)
        async with self._lane:
            lane_client: Any = self._idle.pop() if self._idle else self._new_client()
            try:
                connection = lane_client.connection
                if connection is not None and not connection.is_connected:
                    # The connection's own connect(): a Sentinel-managed connection asks the
                    # sentinels for the current master there, where the implicit connect of
                    # a send would go back to the address it last had.
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

    def _new_client(self) -> aioredis.Redis:
        lane_client = aioredis.Redis(connection_pool=self._pool, single_connection_client=True)
        self._all.append(lane_client)
        return lane_client

    async def aclose(self) -> None:
        """Give the lane's connections back to the pool (which its owner then closes)."""
        self._closed = True
        clients, self._all, self._idle = self._all, [], []
        for lane_client in clients:
            await lane_client.aclose()
        await self._pipelines.aclose()
