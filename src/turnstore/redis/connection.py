"""Redis URLs and clients: one parsed configuration, one client per event loop.

A redis-py asyncio client belongs to the event loop that first used it. `Runner.run_sync`
runs its own loop (often in another thread), so a session or store that opened its own
client keeps one client per running loop, all made from the same configuration.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import ssl
import threading
import weakref
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import FullJitterBackoff, NoBackoff
from redis.exceptions import AuthenticationError

from ..errors import ConfigurationError, SessionClosedError
from ..options import SessionOptions
from ..urls import mask_url, parse_bool, split_options, split_userinfo
from .keys import validate_key_prefix
from .lane import Lane

__all__ = [
    "DEFAULT_REDIS_URL",
    "AnyRedis",
    "ClientSource",
    "RedisConfig",
    "build_url",
    "default_redis_url",
    "parse_redis_url",
]

AnyRedis: TypeAlias = "aioredis.Redis | RedisCluster"
_T = TypeVar("_T")

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
#: Connections of a lane when neither the caller nor the URL sets `max_connections`.
DEFAULT_LANE_SIZE = 64

REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster")

# Query options that go to redis-py's connections.
_INT = int
_FLOAT = float
_DRIVER_OPTIONS: dict[str, Callable[[str], Any]] = {
    "ssl": parse_bool,  # TLS on or off (see `RedisConfig.tls`)
    "db": _INT,
    "socket_timeout": _FLOAT,
    "socket_connect_timeout": _FLOAT,
    "socket_keepalive": parse_bool,
    "retry_on_timeout": parse_bool,
    "health_check_interval": _FLOAT,
    "client_name": str,
    "protocol": _INT,
    "timeout": _FLOAT,  # how long a blocking pool waits for a free connection
    "ssl_cert_reqs": str,
    "ssl_ca_certs": str,
    "ssl_ca_path": str,
    "ssl_ca_data": str,
    "ssl_certfile": str,
    "ssl_keyfile": str,
    "ssl_check_hostname": parse_bool,
    "ssl_min_version": str,
    "ssl_ciphers": str,
    "ssl_password": str,
}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


_STORE_OPTIONS: dict[str, Callable[[str], Any]] = {
    "max_connections": _positive_int,
    "key_prefix": str,
}
# What redis-py's RedisCluster takes: it has no **kwargs, so anything else fails at first use.
_CLUSTER_PARAMETERS = frozenset(inspect.signature(RedisCluster.__init__).parameters) | {
    "db",  # only 0 (checked), dropped
    "timeout",  # the pool wait of a standalone store, dropped
}
# Schemes with no TLS twin: an `ssl_*` option there turns TLS on, as `rediss://` would.
_TLS_BY_OPTIONS = ("redis+sentinel", "redis+cluster")


@dataclass(frozen=True)
class RedisConfig:
    """What a Redis URL says: where to connect, how, and the session/store options."""

    url: str  # as given (never printed: use `masked_url`)
    scheme: str
    hosts: tuple[tuple[str, int], ...] = ()
    path: str | None = None  # unix socket
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    service_name: str | None = None  # sentinel
    driver_options: Mapping[str, Any] = field(default_factory=dict)
    session_options: Mapping[str, Any] = field(default_factory=dict)
    store_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)

    @property
    def tls(self) -> bool:
        """Whether connections use TLS: `rediss://`, `?ssl=true`, or, on `redis+cluster://`
        and `redis+sentinel://` (which have no TLS scheme of their own), any `ssl_*` option
        unless `ssl=false`."""
        explicit = self.driver_options.get("ssl")
        if explicit is not None:
            return bool(explicit)
        if self.scheme == "rediss":
            return True
        return self.scheme in _TLS_BY_OPTIONS and any(
            name.startswith("ssl_") for name in self.driver_options
        )

    def __repr__(self) -> str:
        return f"RedisConfig({self.masked_url!r})"

    def resolve_options(self, overrides: Mapping[str, Any]) -> tuple[str, SessionOptions]:
        """The key prefix and session options: the URL's query, then keyword `overrides`."""
        merged: dict[str, Any] = {**self.session_options, **overrides}
        key_prefix = merged.pop("key_prefix", self.store_options.get("key_prefix"))
        return (
            validate_key_prefix(key_prefix or "turnstore"),
            SessionOptions.from_mapping(merged),
        )

    def make_client(self, *, max_connections: int | None = None, blocking: bool = False) -> Any:
        """A new redis-py asyncio client for this configuration (the caller owns it).

        Its connections retry a command whose connection failed: safe here, because every
        write carries a batch token or sets state (see `RedisSession`).
        """
        options: dict[str, Any] = {"retry": default_retry(), **self.driver_options}
        options["ssl"] = self.tls
        limit = max_connections or self.store_options.get("max_connections")
        auth: dict[str, Any] = {}
        if self.username is not None:
            auth["username"] = self.username
        if self.password is not None:
            auth["password"] = self.password
        if self.scheme == "redis+cluster":
            options.pop("db", None)
            options.pop("timeout", None)
            if limit:
                options["max_connections"] = limit
            nodes = [ClusterNode(host, port) for host, port in self.hosts]
            cluster_class = BlockingRedisCluster if blocking else RedisCluster
            return cluster_class(startup_nodes=nodes, **auth, **options)
        if self.scheme == "redis+sentinel":
            wait = options.pop("timeout", None)
            sentinel = Sentinel(  # type: ignore[no-untyped-call]
                list(self.hosts),
                # One try per sentinel: the master's connection retries discovery (with
                # backoff), and an unreachable sentinel must not cost seconds of redis-py's
                # own retries on every one of those attempts.
                sentinel_kwargs={**auth, **_socket_only(options), "retry": Retry(NoBackoff(), 0)},
                **auth,
                **options,
            )
            master: dict[str, Any] = {"db": self.db}
            if limit:
                master["max_connections"] = limit
            if blocking:
                master["connection_pool_class"] = BlockingSentinelConnectionPool
                if wait is not None:
                    master["timeout"] = wait
            assert self.service_name is not None
            return sentinel.master_for(self.service_name, **master)
        pool_class = aioredis.BlockingConnectionPool if blocking else aioredis.ConnectionPool
        pool_options: dict[str, Any] = {**options, **auth, "db": self.db}
        if not blocking:
            pool_options.pop("timeout", None)
        if limit:
            pool_options["max_connections"] = limit
        if self.scheme == "unix":
            pool_options["connection_class"] = aioredis.UnixDomainSocketConnection
            pool_options["path"] = self.path
            pool_options.pop("ssl", None)
        else:
            host, port = self.hosts[0]
            pool_options["host"] = host
            pool_options["port"] = port
            if pool_options.pop("ssl", False):
                pool_options["connection_class"] = aioredis.SSLConnection
        pool = pool_class(**pool_options)
        return aioredis.Redis.from_pool(pool)

    def make_lane(self, client: Any, *, max_connections: int | None = None) -> Lane:
        """The direct lane (see `lane.py`) of a standalone or Sentinel client from
        `make_client`: the same connection settings, limit and pool wait."""
        pool = client.connection_pool
        limit = max_connections or self.store_options.get("max_connections") or DEFAULT_LANE_SIZE
        return Lane(pool, max_connections=limit, wait_timeout=self.driver_options.get("timeout"))


# Set while a task runs a command or pipeline of a `BlockingRedisCluster`: what that command
# runs in turn (redirections, fallbacks) must not wait for a second slot, or it could wait
# for itself.
_IN_CLUSTER_SLOT: ContextVar[bool] = ContextVar("turnstore_in_cluster_slot", default=False)


class BlockingRedisCluster(RedisCluster):
    """A cluster client whose callers beyond `max_connections` commands in flight wait for
    one to finish, as on a standalone store's blocking pool. redis-py's cluster nodes raise
    `MaxConnectionsError` instead; with at most `max_connections` commands and pipelines in
    flight, no node ever needs more connections than that."""

    def __init__(self, *, max_connections: int = 64, **kwargs: Any) -> None:
        super().__init__(max_connections=max_connections, **kwargs)
        self._slots = asyncio.Semaphore(max_connections)

    async def _in_slot(self, call: Callable[[], Awaitable[_T]]) -> _T:
        if _IN_CLUSTER_SLOT.get():
            return await call()
        async with self._slots:
            token = _IN_CLUSTER_SLOT.set(True)
            try:
                return await call()
            finally:
                _IN_CLUSTER_SLOT.reset(token)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        return await self._in_slot(
            lambda: super(BlockingRedisCluster, self).execute_command(*args, **kwargs)
        )

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        if shard_hint or transaction:
            # redis-py decides: it refuses both on some versions. The library never asks.
            return super().pipeline(transaction, shard_hint)
        return _BlockingClusterPipeline(self)  # type: ignore[abstract]


class _BlockingClusterPipeline(ClusterPipeline):
    # ClusterPipeline's constructor and the name it keeps its client under vary across
    # redis-py versions (5.0 takes the client alone): this keeps its own reference.
    __slots__ = ("_limiter",)

    def __init__(self, client: BlockingRedisCluster) -> None:
        super().__init__(client)
        self._limiter = client

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        return await self._limiter._in_slot(
            lambda: ClusterPipeline.execute(self, raise_on_error, allow_redirections)
        )


class BlockingSentinelConnectionPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """The master's pool of a Sentinel store: beyond `max_connections`, callers wait for a
    free connection (as on a standalone store) instead of failing with `MaxConnectionsError`."""


class _Retry(Retry):
    """Retries that give up at once on what a retry cannot fix: a server certificate the
    client refuses (wrong CA, wrong host name) or a refused password (redis-py's
    `AuthenticationError` is a `ConnectionError`) fails the same way every time."""

    async def call_with_retry(
        self, do: Callable[[], Awaitable[Any]], fail: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        # redis-py stops retrying when `fail` raises; its signature varies across versions.
        async def fail_fast(error: Exception, *rest: Any) -> None:
            outcome = fail(error, *rest)
            if inspect.isawaitable(outcome):
                await outcome
            if isinstance(error, AuthenticationError) or _certificate_refused(error):
                raise error

        return await super().call_with_retry(do, fail_fast, *args, **kwargs)


def _certificate_refused(error: BaseException) -> bool:
    seen: BaseException | None = error
    for _ in range(8):  # redis-py raises its ConnectionError while handling the SSL error
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def default_retry() -> Retry:
    """Retries of clients the library opens: a few, quickly, long enough for a failover;
    none when the server's certificate is refused."""
    return _Retry(FullJitterBackoff(cap=1.0, base=0.05), 5)  # redis-py 5.0 has no newer name


def _socket_only(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k.startswith("socket_")}


def _parse_hosts(netloc_hosts: str, default_port: int = 6379) -> tuple[tuple[str, int], ...]:
    hosts: list[tuple[str, int]] = []
    for part in netloc_hosts.split(","):
        part = part.strip()
        if not part:
            continue
        if part.startswith("["):  # [ipv6]:port
            host, _, rest = part[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else ""
        else:
            host, _, port_text = part.rpartition(":") if ":" in part else (part, "", "")
        try:
            port = int(port_text) if port_text else default_port
        except ValueError:
            raise ConfigurationError(f"bad port {port_text!r} in Redis URL") from None
        if not host or not 0 < port < 65536:
            raise ConfigurationError(f"bad host:port {part!r} in Redis URL")
        hosts.append((host, port))
    if not hosts:
        raise ConfigurationError("the Redis URL names no host")
    return tuple(hosts)


def parse_redis_url(url: str) -> RedisConfig:
    """Parse a `redis://`, `rediss://`, `unix://`, `redis+sentinel://` or `redis+cluster://`
    URL; query parameters set driver, session and store options."""
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(f"not a URL: {mask_url(str(url))!r}")
    scheme = url.split("://", 1)[0].lower()
    if scheme not in REDIS_SCHEMES:
        raise ConfigurationError(f"unknown Redis URL scheme {scheme!r} in {mask_url(url)!r}")
    # The userinfo first, as `mask_url` reads it: a password may hold `/`, `#`, `@`.
    _, userinfo, rest = split_userinfo(url)
    rest, _, query = rest.partition("?")
    rest, _, _fragment = rest.partition("#")
    pairs = parse_qsl(query, keep_blank_values=True)
    params = dict(pairs)
    if len(params) < len(pairs):
        twice = next(name for name, _ in pairs if sum(n == name for n, _ in pairs) > 1)
        raise ConfigurationError(f"option {twice!r} given twice in {mask_url(url)!r}")
    session_options, remaining = split_options(params, url)
    driver_options: dict[str, Any] = {}
    store_options: dict[str, Any] = {}
    for name, text in remaining.items():
        if name in _STORE_OPTIONS:
            target, parser = store_options, _STORE_OPTIONS[name]
        elif name in _DRIVER_OPTIONS:
            target, parser = driver_options, _DRIVER_OPTIONS[name]
        else:
            raise ConfigurationError(f"unknown option {name!r} in {mask_url(url)!r}")
        try:
            target[name] = parser(text)
        except (ValueError, ConfigurationError):
            raise ConfigurationError(
                f"bad value {text!r} for option {name!r} in {mask_url(url)!r}"
            ) from None
    hostpart = rest
    username: str | None = None
    password: str | None = None
    if userinfo:
        user_text, colon, password_text = userinfo.partition(":")
        username = unquote(user_text) or None
        password = unquote(password_text) if colon else None
        if not colon:  # redis://secret@host: a lone userinfo is a password, as redis-py reads it
            password, username = username, None
    db = int(driver_options.pop("db", 0))
    if scheme == "unix":
        path = unquote(hostpart.split("?")[0]) or None
        if not path:
            raise ConfigurationError("a unix:// URL needs a socket path")
        return _check_tls(
            RedisConfig(
                url=url,
                scheme=scheme,
                path=path,
                db=db,
                username=username,
                password=password,
                driver_options=driver_options,
                session_options=session_options,
                store_options=store_options,
            )
        )
    netloc, _, path_text = hostpart.partition("/")
    hosts = _parse_hosts(unquote(netloc))
    service_name: str | None = None
    segments = [s for s in path_text.split("/") if s]
    if scheme == "redis+sentinel":
        if not segments:
            raise ConfigurationError("a redis+sentinel:// URL needs a service name")
        service_name = unquote(segments[0])
        segments = segments[1:]
    if segments:
        if len(segments) > 1 or not segments[0].isdigit():
            raise ConfigurationError(f"bad database {'/'.join(segments)!r} in {mask_url(url)!r}")
        db = int(segments[0])
    if scheme == "redis+cluster" and db != 0:
        raise ConfigurationError("Redis Cluster has only database 0")
    if scheme == "redis+cluster":
        for name in driver_options:
            if name not in _CLUSTER_PARAMETERS:
                raise ConfigurationError(
                    f"option {name!r} is not supported on Redis Cluster in {mask_url(url)!r}"
                )
    if scheme in ("redis", "rediss") and len(hosts) > 1:
        raise ConfigurationError(
            "several hosts need redis+sentinel:// or redis+cluster://, not " + scheme
        )
    return _check_tls(
        RedisConfig(
            url=url,
            scheme=scheme,
            hosts=hosts,
            db=db,
            username=username,
            password=password,
            service_name=service_name,
            driver_options=driver_options,
            session_options=session_options,
            store_options=store_options,
        )
    )


def _check_tls(config: RedisConfig) -> RedisConfig:
    """Refuse TLS options that would be ignored or contradict the scheme."""
    if config.scheme == "rediss" and config.driver_options.get("ssl") is False:
        raise ConfigurationError(f"ssl=false contradicts rediss:// in {config.masked_url!r}")
    if config.scheme == "unix" and config.tls:
        raise ConfigurationError(f"no TLS over a unix socket: {config.masked_url!r}")
    if not config.tls:
        tls_options = sorted(n for n in config.driver_options if n.startswith("ssl_"))
        if tls_options:
            raise ConfigurationError(
                f"TLS option {tls_options[0]!r} without TLS (use rediss:// or ssl=true) "
                f"in {config.masked_url!r}"
            )
    return config


async def close_client(client: Any, lane: Lane | None = None) -> None:
    """Close a client `RedisConfig.make_client` made, with its lane's connections and the
    connections it opened to the sentinels, which closing a `master_for` client leaves open."""
    if lane is not None:
        await lane.aclose()
    await client.aclose()
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    for sentinel in getattr(manager, "sentinels", ()):
        await sentinel.aclose()


def default_redis_url() -> str:
    return os.environ.get("TURNSTORE_REDIS_URL") or DEFAULT_REDIS_URL


class ClientSource:
    """Hands out the client for the running event loop.

    An injected client is returned as is and never closed. A source built from a
    configuration opens one client per event loop on first use and closes them in `aclose`.
    """

    def __init__(
        self,
        *,
        client: AnyRedis | None = None,
        config: RedisConfig | None = None,
        blocking: bool = False,
        max_connections: int | None = None,
    ) -> None:
        if (client is None) == (config is None):
            raise ValueError("give exactly one of client and config")
        self._client = client
        self.config = config
        self._blocking = blocking
        self._max_connections = max_connections
        self._closed_by: str | None = None
        # Cluster clients already initialized, and the lock that initializes each (weak: a
        # client of a closed loop must not be kept, nor its id mistaken for a new one's).
        self._init_locks: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()
        self._initialized: weakref.WeakSet[Any] = weakref.WeakSet()
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._lanes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Lane] = (
            weakref.WeakKeyDictionary()
        )
        self._guard = threading.Lock()

    @property
    def owns_clients(self) -> bool:
        return self._client is None

    @property
    def is_cluster(self) -> bool:
        if self._client is not None:
            return isinstance(self._client, RedisCluster)
        assert self.config is not None
        return self.config.scheme == "redis+cluster"

    def get(self) -> Any:
        if self._closed_by is not None:
            raise SessionClosedError(f"{self._closed_by} is closed")
        if self._client is not None:
            return self._client
        loop = asyncio.get_running_loop()
        client = self._by_loop.get(loop)
        if client is None:
            with self._guard:
                client = self._by_loop.get(loop)
                if client is None:
                    assert self.config is not None
                    client = self.config.make_client(
                        max_connections=self._max_connections, blocking=self._blocking
                    )
                    self._by_loop[loop] = client
                    if not isinstance(client, RedisCluster):
                        self._lanes[loop] = self.config.make_lane(
                            client, max_connections=self._max_connections
                        )
        return client

    def lane(self) -> Lane | None:
        """The direct lane for the running loop's client, if this source opened that client
        and it is not a cluster client (see `lane.py`); None otherwise."""
        if self._client is not None:
            return None
        lane = self._lanes.get(asyncio.get_running_loop())
        if lane is None:
            self.get()  # raises when closed; makes the client (and its lane) on first use
            lane = self._lanes.get(asyncio.get_running_loop())
        return lane

    async def aclose(self, owner: str = "RedisStore") -> None:
        """Close the clients this source opened (never an injected one); later use raises
        `SessionClosedError` naming `owner`."""
        self._closed_by = owner
        if self._client is not None:
            return
        with self._guard:
            clients = list(self._by_loop.items())
            self._by_loop.clear()
            lanes = dict(self._lanes)
            self._lanes.clear()
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, client in clients:
            lane = lanes.get(loop)
            if loop is current:
                await close_client(client, lane)
            elif not loop.is_closed() and loop.is_running():
                # Another thread's loop: close there; its connections belong to it.
                asyncio.run_coroutine_threadsafe(close_client(client, lane), loop)
            # A closed loop took its sockets with it; nothing to await.

    async def execute(self, *command: bytes | str | int | float) -> Any:
        """One command, on the direct lane when there is one, else through the client."""
        lane = self.lane()
        if lane is not None:
            return await lane.call(*command)
        return await (await self.ready()).execute_command(*command)

    async def ready(self) -> Any:
        """The client for the running loop, initialized.

        A Redis Cluster client is initialized once, before any command: redis-py's
        `RedisCluster` can fail, or even repeat commands, when its very first commands run
        concurrently with its own lazy initialization.
        """
        client = self.get()
        if isinstance(client, RedisCluster) and client not in self._initialized:
            lock = self._init_locks.setdefault(client, asyncio.Lock())
            async with lock:
                if client not in self._initialized:
                    await client.initialize()
                    self._initialized.add(client)
        return client

    def clone(self) -> ClientSource:
        """A source of the same kind that opens clients of its own."""
        if self._client is not None:
            return self
        return ClientSource(
            config=self.config, blocking=self._blocking, max_connections=self._max_connections
        )

    def describe(self) -> str:
        if self.config is not None:
            return self.config.masked_url
        return type(self._client).__name__


def build_url(scheme: str, host: str, port: int, db: int = 0, password: str | None = None) -> str:
    """A redis URL from parts (tests and the CLI use it)."""
    auth = f":{quote(password, safe='')}@" if password else ""
    return urlunsplit((scheme, f"{auth}{host}:{port}", f"/{db}", "", ""))
