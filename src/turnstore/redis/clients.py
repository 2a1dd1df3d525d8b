"""Clients and their transports, one per event loop, and the one call path to Redis.

A redis-py asyncio client belongs to the event loop that first used it. `Runner.run_sync`
runs its own loop (often in another thread), so a session or store that opened its own
client keeps one client (and transport) per running loop, all made from the same
configuration. An injected client is used as it is and never closed.

Every command of a session, a store, a lock or a listing goes through `ClientSource.send`:
the transport for the running loop sends it, and `retry.run` owns its retries and its time
budget and turns the driver's errors into ours.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import weakref
from collections.abc import Sequence
from typing import Any, TypeAlias

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError

from ..errors import BackendUnavailableError, ConfigurationError, SessionClosedError
from . import retry
from .driver import connection_class
from .retry import DEFAULT_BUDGET, Budget, backend_error
from .scripts import EncodableArg, LuaScript
from .transport import ClientTransport, Command, LaneTransport, Transport, injected_transport
from .urls import RedisConfig

__all__ = ["DEFAULT_MAX_CONNECTIONS", "AnyRedis", "ClientSource", "check_client"]

AnyRedis: TypeAlias = "aioredis.Redis | RedisCluster"

#: Connections of a store (or session) that opened its own client, unless told otherwise.
DEFAULT_MAX_CONNECTIONS = 64


def check_client(client: object) -> Any:
    """`client` if it is a redis-py asyncio client, else `ConfigurationError`."""
    if isinstance(client, (aioredis.Redis, RedisCluster)):
        return client
    if isinstance(client, str):
        hint = " (to open one from a URL, use from_url)"
    elif isinstance(client, (redis.Redis, redis.RedisCluster)):
        hint = " (a synchronous client: use redis.asyncio.Redis or redis.asyncio.RedisCluster)"
    else:
        hint = ""
    raise ConfigurationError(
        "client must be a redis.asyncio.Redis or redis.asyncio.RedisCluster, "
        f"not {type(client).__module__}.{type(client).__qualname__}{hint}"
    )


def _no_retries() -> Retry:
    # Retries have one owner, retry.run: redis-py's own (around commands and around connect)
    # are off, so a call makes at most `retries + 1` connection attempts.
    return Retry(NoBackoff(), 0)


def _socket_only(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k.startswith("socket_")}


def make_client(config: RedisConfig, budget: Budget, max_connections: int) -> Any:
    """A new redis-py asyncio client for `config` (the caller owns it)."""
    # No socket_timeout: retry.run bounds each attempt by it with one timer, where redis-py
    # would wrap every write in asyncio.wait_for (a task of its own on Python 3.11).
    options: dict[str, Any] = {
        **config.driver_options,
        "retry": _no_retries(),
        "socket_timeout": None,
        "socket_connect_timeout": budget.connect_timeout,
    }
    options["ssl"] = config.tls
    auth: dict[str, Any] = {}
    if config.username is not None:
        auth["username"] = config.username
    if config.password is not None:
        auth["password"] = config.password
    if config.scheme == "redis+cluster":
        options.pop("db", None)
        nodes = [ClusterNode(host, port) for host, port in config.hosts]
        return RedisCluster(startup_nodes=nodes, max_connections=max_connections, **auth, **options)
    if config.scheme == "redis+sentinel":
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(config.hosts),
            sentinel_kwargs={**auth, **_socket_only(options), "retry": _no_retries()},
            **auth,
            **options,
        )
        assert config.service_name is not None
        return sentinel.master_for(
            config.service_name,
            db=config.db,
            max_connections=max_connections,
            connection_class=connection_class(sentinel=True, tls=config.tls),
        )
    pool_options: dict[str, Any] = {**options, **auth, "db": config.db}
    if config.scheme == "unix":
        pool_options["connection_class"] = connection_class(unix=True)
        pool_options["path"] = config.path
        pool_options.pop("ssl", None)
    else:
        host, port = config.hosts[0]
        pool_options["host"] = host
        pool_options["port"] = port
        pool_options["connection_class"] = connection_class(tls=pool_options.pop("ssl", False))
    pool = aioredis.BlockingConnectionPool(
        max_connections=max_connections, timeout=budget.timeout, **pool_options
    )
    return aioredis.Redis.from_pool(pool)


def make_transport(client: Any, max_connections: int) -> Transport:
    """The transport of a client this package opened: a lane for standalone and Sentinel
    (half the connections; the other half for requests of several commands and for single
    ones while the lane is busy), the client's own path for Cluster."""
    if isinstance(client, RedisCluster) or max_connections < 2:
        return ClientTransport(client, limit=max_connections)
    rest = max(1, max_connections // 2)
    return LaneTransport(
        client.connection_pool,
        ClientTransport(client, limit=rest),
        lane_size=max_connections - rest,
    )


async def close_client(client: Any, transport: Transport | None) -> None:
    """Close a client `make_client` made, its transport's connections, and the connections
    it opened to the sentinels (which closing a `master_for` client leaves open)."""
    if transport is not None:
        await transport.aclose()
    await client.aclose()
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    for sentinel in getattr(manager, "sentinels", ()):
        await sentinel.aclose()


class ClientSource:
    """The client and transport for the running event loop, and the call path through them.

    Give exactly one of `client` (injected: used as is, never closed, its own pool and retry
    policy) and `config` (a client per event loop is opened on first use and closed by
    `aclose`).
    """

    def __init__(
        self,
        *,
        client: AnyRedis | None = None,
        config: RedisConfig | None = None,
        budget: Budget = DEFAULT_BUDGET,
        max_connections: int | None = None,
    ) -> None:
        if (client is None) == (config is None):
            raise ValueError("give exactly one of client and config")
        self._client = check_client(client) if client is not None else None
        self.config = config
        self.budget = budget
        self._max_connections = max_connections or (
            config.store_options.get("max_connections") if config is not None else None
        )
        self._closed_by: str | None = None
        self._injected = injected_transport(client) if client is not None else None
        # Retries have one place. An injected client that retries lost connections itself
        # keeps that job; one that does not (or a client this source opens, whose own
        # retries are off) is resent here.
        self._resends = client is None or not _retries_of(client)
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[Any, Transport]
        ] = weakref.WeakKeyDictionary()
        self._guard = threading.Lock()
        self.where = config.masked_url if config is not None else _describe(client)
        # Read-only scripts go as EVALSHA_RO, except on Cluster, where redis-py would ask a
        # node for the keys of every such command (COMMAND GETKEYS) before routing it.
        self._cluster = isinstance(client, RedisCluster) or (
            config is not None and config.scheme == "redis+cluster"
        )
        self._ro = not self._cluster

    @property
    def owns_clients(self) -> bool:
        return self._client is None

    @property
    def max_connections(self) -> int:
        return int(self._max_connections or DEFAULT_MAX_CONNECTIONS)

    def _open(self) -> tuple[Any, Transport]:
        if self._closed_by is not None:
            raise SessionClosedError(f"{self._closed_by} is closed")
        if self._injected is not None:
            return self._client, self._injected
        loop = asyncio.get_running_loop()
        pair = self._by_loop.get(loop)
        if pair is None:
            with self._guard:
                pair = self._by_loop.get(loop)
                if pair is None:
                    assert self.config is not None
                    client = make_client(self.config, self.budget, self.max_connections)
                    pair = (client, make_transport(client, self.max_connections))
                    self._by_loop[loop] = pair
        return pair

    def client(self) -> Any:
        """The redis-py client serving the running event loop."""
        return self._open()[0]

    @property
    def sees_every_send(self) -> bool:
        """True when every time a request goes out is one of `retry.run`'s attempts: the
        driver resends nothing by itself (an injected client with its own retry policy does)."""
        return self._resends

    async def send(
        self,
        commands: Sequence[Command],
        *,
        resend_lost: bool = True,
        sends: retry.Sends | None = None,
    ) -> list[Any]:
        """The replies to `commands` (one round trip), error replies in place, within the
        time budget; resent when the outcome is unknown (`resend_lost`, for idempotent
        requests: all of this package's) or the cluster is in flux. `sends` counts the
        attempts."""
        return await retry.run(
            self._open()[1].send,
            commands,
            self.budget,
            self.where,
            # An injected client that resends by its own policy is the one place that does.
            resend_lost=resend_lost and self._resends,
            # An injected client's socket timeouts are its own.
            bound_attempts=self._injected is None,
            sends=sends,
        )

    async def send_routed(self, route: str, command: Command) -> Any:
        """The reply to one `command` (error replies in place) from the server that holds
        the key `route`: on Cluster, the node serving its slot, whatever keys the command
        names (see the node scripts); within the time budget, resent like `send`."""
        replies = await retry.run(
            functools.partial(self._open()[1].send, route=route),
            [command],
            self.budget,
            self.where,
            resend_lost=self._resends,
            bound_attempts=self._injected is None,
        )
        return replies[0]

    async def ready_client(self) -> Any:
        """The client serving the running event loop, initialized (a Cluster client knows
        its slot map), within the time budget."""
        client, transport = self._open()
        if isinstance(transport, ClientTransport):

            async def initialize(_: Sequence[Any]) -> list[Any]:
                return [await transport.ready()]

            await retry.run(
                initialize, [], self.budget, self.where, bound_attempts=self._injected is None
            )
        return client

    @property
    def cluster(self) -> bool:
        """True when the clients are Redis Cluster clients."""
        return self._cluster

    async def execute(self, *command: EncodableArg) -> Any:
        """One command's reply; an error reply raises our error."""
        return self._checked((await self.send([command]))[0])

    async def script(
        self,
        script: LuaScript,
        keys: Sequence[str | bytes],
        args: Sequence[EncodableArg],
        *,
        sends: retry.Sends | None = None,
    ) -> Any:
        """Run `script` on `keys` with `args`; an error reply raises our error."""
        command = script.command(keys, args, ro=self._ro)
        return self._checked((await self.send([command], sends=sends))[0])

    def script_command(
        self, script: LuaScript, keys: Sequence[str | bytes], args: Sequence[EncodableArg]
    ) -> Command:
        """The command that runs `script` here (for requests of several commands)."""
        return script.command(keys, args, ro=self._ro)

    def _checked(self, reply: Any) -> Any:
        if isinstance(reply, ResponseError):
            raise backend_error(reply, self.where) from reply
        return reply

    def raise_errors(self, replies: Sequence[Any]) -> None:
        """Raise our error for the first error reply among `replies`, if any."""
        for reply in replies:
            self._checked(reply)

    async def ping(self) -> bool:
        """True when the server answers within the budget, False when it cannot be reached."""
        try:
            await self.execute("PING")
        except BackendUnavailableError:
            return False
        return True

    async def aclose(self, owner: str = "RedisStore") -> None:
        """Close the clients this source opened (never an injected one); later use raises
        `SessionClosedError` naming `owner`."""
        self._closed_by = owner
        if self._client is not None:
            return
        with self._guard:
            pairs = list(self._by_loop.items())
            self._by_loop.clear()
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, (client, transport) in pairs:
            if loop is current:
                await close_client(client, transport)
            elif not loop.is_closed() and loop.is_running():
                # Another thread's loop: close there; its connections belong to it.
                asyncio.run_coroutine_threadsafe(close_client(client, transport), loop)
            # A closed loop took its sockets with it; nothing to await.

    def clone(self) -> ClientSource:
        """A source of the same kind that opens clients of its own."""
        if self._client is not None:
            return self
        return ClientSource(
            config=self.config, budget=self.budget, max_connections=self._max_connections
        )

    def describe(self) -> str:
        return self.where


def _retries_of(client: Any) -> int | None:
    """How many times an injected client's own policy resends a failed command: 0 when it
    has no policy, None when its policy does not say. (redis-py 7.2's RedisCluster has no
    `get_retry()`; its policy is its `retry` attribute.)"""
    policy = client.get_retry() if hasattr(client, "get_retry") else getattr(client, "retry", None)
    if policy is None:
        return 0
    count = getattr(policy, "get_retries", None)
    return int(count()) if callable(count) else None


def _describe(client: Any) -> str:
    """Where an injected client connects, for error messages (no password)."""
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None) or {}
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    if "host" in kwargs:
        return f"redis://{kwargs['host']}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
    return type(client).__name__
