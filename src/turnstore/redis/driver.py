"""The only redis-py subclasses of this package: connections that pack commands with hiredis.

redis-py packs every command in Python, argument by argument; for the append script (some
twenty arguments) that is the largest share of the client's work on a call. hiredis (the
`fast` extra) packs a whole command in one C call. redis-py offers no public way to choose
its packer, so the connections of clients this package opens override `pack_command` (a
public method, with the same result on the wire) and fall back to redis-py's own packing for
anything hiredis does not take. `TURNSTORE_NO_FAST=1` turns it off, as it does orjson.

Injected clients and Cluster clients keep redis-py's own connections.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.sentinel import SentinelManagedConnection, SentinelManagedSSLConnection

__all__ = ["HAS_HIREDIS_PACKER", "connection_class"]

_pack: Callable[[tuple[Any, ...]], bytes] | None = None
if not os.environ.get("TURNSTORE_NO_FAST"):
    with contextlib.suppress(ImportError):
        from hiredis import pack_command as _pack

HAS_HIREDIS_PACKER = _pack is not None


class _HiredisPacking:
    def pack_command(self, *args: Any) -> list[bytes]:
        first = args[0] if args else None
        # redis-py splits a command name written with a space ("CONFIG GET"): its own way.
        if _pack is not None and not (isinstance(first, str) and " " in first):
            try:
                return [_pack(args)]
            except TypeError:
                pass  # a type hiredis does not pack: redis-py encodes (or refuses) it
        return super().pack_command(*args)  # type: ignore[misc, no-any-return]


class HiredisConnection(_HiredisPacking, Connection):
    """`Connection`, packing with hiredis."""


class HiredisSSLConnection(_HiredisPacking, SSLConnection):
    """`SSLConnection`, packing with hiredis."""


class HiredisUnixConnection(_HiredisPacking, UnixDomainSocketConnection):
    """`UnixDomainSocketConnection`, packing with hiredis."""


class HiredisSentinelConnection(_HiredisPacking, SentinelManagedConnection):
    """`SentinelManagedConnection`, packing with hiredis."""


class HiredisSentinelSSLConnection(_HiredisPacking, SentinelManagedSSLConnection):
    """`SentinelManagedSSLConnection`, packing with hiredis."""


def connection_class(*, sentinel: bool = False, tls: bool = False, unix: bool = False) -> type:
    """The connection class for a client this package opens."""
    if _pack is None:
        if sentinel:
            return SentinelManagedSSLConnection if tls else SentinelManagedConnection
        if unix:
            return UnixDomainSocketConnection
        return SSLConnection if tls else Connection
    if sentinel:
        return HiredisSentinelSSLConnection if tls else HiredisSentinelConnection
    if unix:
        return HiredisUnixConnection
    return HiredisSSLConnection if tls else HiredisConnection
