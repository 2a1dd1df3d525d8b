"""Redis URLs: what a `redis://`, `rediss://`, `unix://`, `redis+sentinel://` or
`redis+cluster://` URL says, parsed once into a `RedisConfig`."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from redis.asyncio.cluster import RedisCluster

from ..backend import validate_index_metadata
from ..errors import ConfigurationError
from ..options import parse_bool
from ..urls import mask_url, split_options, split_userinfo
from .retry import BUDGET_OPTIONS, Budget

__all__ = [
    "DEFAULT_REDIS_URL",
    "REDIS_SCHEMES",
    "RedisConfig",
    "default_redis_url",
    "parse_redis_url",
]

DEFAULT_REDIS_URL = "redis://localhost:6379/0"

REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster")


def _protocol(text: str) -> int:
    value = int(text)
    if value not in (2, 3):
        raise ValueError(text)
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also refuses NaN
        raise ValueError(text)
    return value


# Query options that go to redis-py's connections.
_DRIVER_OPTIONS: dict[str, Callable[[str], Any]] = {
    "ssl": parse_bool,  # TLS on or off (see `RedisConfig.tls`)
    "db": int,
    "socket_keepalive": parse_bool,
    "health_check_interval": _non_negative_float,
    "client_name": str,
    "protocol": _protocol,
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


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


_STORE_OPTIONS: dict[str, Callable[[str], Any]] = {
    "max_connections": _positive_int,
    "key_prefix": str,
    "index_metadata": validate_index_metadata,
}
# The call's time budget and its retries (see retry.py), checked again by `Budget`.
_BUDGET_OPTIONS: dict[str, Callable[[str], Any]] = {
    "timeout": float,
    "retries": _non_negative_int,
    "socket_timeout": float,
    "socket_connect_timeout": float,
}
# What redis-py's RedisCluster takes: it has no **kwargs, so anything else fails at first use.
_CLUSTER_PARAMETERS = frozenset(inspect.signature(RedisCluster.__init__).parameters) | {
    "db",  # only 0 (checked), dropped
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
    budget_options: Mapping[str, Any] = field(default_factory=dict)

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

    def budget(self, overrides: Mapping[str, Any]) -> Budget:
        """The time budget of every call: the URL's query, then keyword `overrides` (only
        `timeout`, `retries`, `socket_timeout`, `socket_connect_timeout` are read)."""
        merged: dict[str, Any] = dict(self.budget_options)
        for name in BUDGET_OPTIONS:
            value = overrides.get(name)
            if value is not None:
                merged[name] = value
        try:
            return Budget.from_options(merged)
        except ConfigurationError as error:
            raise ConfigurationError(f"{error} in {self.masked_url!r}") from None


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
    session_options, remaining = split_options(
        params, url, {*_STORE_OPTIONS, *_BUDGET_OPTIONS, *_DRIVER_OPTIONS}
    )
    driver_options: dict[str, Any] = {}
    store_options: dict[str, Any] = {}
    budget_options: dict[str, Any] = {}
    for name, text in remaining.items():
        if name in _STORE_OPTIONS:
            target, parser = store_options, _STORE_OPTIONS[name]
        elif name in _BUDGET_OPTIONS:
            target, parser = budget_options, _BUDGET_OPTIONS[name]
        else:
            target, parser = driver_options, _DRIVER_OPTIONS[name]
        try:
            target[name] = parser(text)
        except (ValueError, ConfigurationError):
            raise ConfigurationError(
                f"bad value {text!r} for option {name!r} in {mask_url(url)!r}"
            ) from None
    try:
        Budget.from_options(budget_options)
    except ConfigurationError as error:
        raise ConfigurationError(f"{error} in {mask_url(url)!r}") from None
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
                budget_options=budget_options,
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
            budget_options=budget_options,
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


def default_redis_url() -> str:
    return os.environ.get("TURNSTORE_REDIS_URL") or DEFAULT_REDIS_URL
