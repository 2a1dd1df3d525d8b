"""The direct lane: a session's scripts and reads sent straight on connections of its own.

redis-py's asyncio client spends more time per command checking a connection out of its pool
and back in than a short Lua script takes to run on the server (pool locks, a readiness probe
of the socket, connection-count bookkeeping). A session's commands are small, independent
requests, so for the clients this package opens itself (standalone and Sentinel) it keeps a
small LIFO of connections and checks them out with a list pop.

What redis-py's own command path does is kept: each connection is made by the client's pool
(so Sentinel connections find the current master, TLS and credentials apply), a command is
retried with the connection's `Retry` policy, and a connection whose exchange was interrupted
(error, timeout, cancellation) is disconnected before it comes back, so a reply can never be
read by the wrong caller. At most `max_connections` exchanges are in flight; more wait (up to
`wait_timeout`) as on a blocking pool.

With hiredis (the `fast` extra), replies are read straight from the hiredis reader of
redis-py's parser, as redis-py's `read_response` would (error replies in place, connection
errors raised, RESP3 push messages to redis-py's handlers, a demoted Sentinel master's
READONLY turned into a connection error), but without its per-command timeout context: one
watchdog timer per lane bounds the exchanges in flight by the socket timeout. Without
hiredis, redis-py reads.

Cluster clients do not use a lane: they route each command to the node owning its slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import AuthenticationError, ReadOnlyError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# The `fast` extra: hiredis packs a command several times faster than redis-py's Python
# (TURNSTORE_NO_FAST=1 turns it off, as it does orjson).
_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None = None
# redis-py's asyncio hiredis parser and the value its reader returns for "not yet": replies
# are then taken from that reader directly (see `_read_direct`).
_HiredisParser: type | None = None
_NOT_ENOUGH_DATA: object = object()
if not os.environ.get("TURNSTORE_NO_FAST"):
    with contextlib.suppress(ImportError):
        from hiredis import pack_command as _hiredis_pack
    with contextlib.suppress(ImportError):
        from redis._parsers.hiredis import NOT_ENOUGH_DATA as _NOT_ENOUGH_DATA
        from redis._parsers.hiredis import _AsyncHiredisParser as _HiredisParser

__all__ = ["Lane"]

Command = Sequence[bytes | str | int | float]

#: Bytes asked of the socket per read (redis-py asks 64 KiB too).
_READ_SIZE = 65536


class Lane:
    """Connections of one client's pool, used directly, one exchange at a time each."""

    def __init__(
        self, pool: Any, *, max_connections: int, wait_timeout: float | None = None
    ) -> None:
        self._pool = pool
        self._idle: list[Any] = []
        self._all: list[Any] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._wait_timeout = wait_timeout
        self._closed = False
        # Exchanges in flight that have a read timeout: their deadline and stream.
        self._deadlines: dict[Any, tuple[float, asyncio.StreamReader]] = {}
        self._watchdog: asyncio.TimerHandle | None = None

    async def _checkout(self) -> Any:
        if self._closed:
            raise RedisConnectionError("the connection lane is closed")
        if self._slots.locked():
            try:
                await asyncio.wait_for(self._slots.acquire(), self._wait_timeout)
            except asyncio.TimeoutError:
                raise RedisConnectionError("No connection available.") from None
        else:
            await self._slots.acquire()  # free: returns at once
        if self._idle:
            return self._idle.pop()
        try:
            connection = self._pool.make_connection()
        except BaseException:
            self._slots.release()
            raise
        self._all.append(connection)
        return connection

    async def _checkin(self, connection: Any) -> None:
        self._slots.release()
        if self._closed:
            # Closed while this exchange ran: the connection goes, not back to the idle list.
            await connection.disconnect()
        else:
            self._idle.append(connection)

    def _pack(self, connection: Any, commands: Sequence[Command]) -> list[bytes]:
        if _hiredis_pack is not None:
            return [_hiredis_pack(tuple(command)) for command in commands]
        packed: list[bytes] = []
        for command in commands:
            packed += connection.pack_command(*command)
        return packed

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """Send `commands` in one write and read their replies: one round trip.

        An error reply comes back in its place as a `ResponseError` (as redis-py's
        `execute(raise_on_error=False)` does). A connection error or timeout is retried with
        the connection's retry policy, as redis-py's command path does, and raises when that
        runs out.
        """
        connection = await self._checkout()
        try:
            packed = self._pack(connection, commands)
            try:
                return await self._exchange(connection, packed, len(commands))
            except (RedisConnectionError, RedisTimeoutError) as error:
                retry = getattr(connection, "retry", None)
                if retry is None or isinstance(error, AuthenticationError):
                    raise  # a refused password fails the same way every time

            async def fail(*_args: Any) -> None:
                await connection.disconnect()

            return await retry.call_with_retry(  # type: ignore[no-any-return]
                lambda: self._exchange(connection, packed, len(commands)), fail
            )
        finally:
            await self._checkin(connection)

    async def _exchange(self, connection: Any, packed: list[bytes], replies: int) -> list[Any]:
        if not connection.is_connected:
            # The connection's own connect(), as a pool does: a Sentinel-managed connection
            # asks the sentinels for the master there, while send_packed_command's implicit
            # connect would go to the default address.
            await connection.connect()
        parser: Any = connection._parser
        if not _reads_directly(connection, parser):
            # redis-py's own reading: the pure-Python parsers, or a redis-py too old to say
            # how RESP3 push messages look.
            await _send(connection, packed)
            return await _read_replies(connection, replies)
        await _send(connection, packed)  # bounded by the socket timeout itself when it waits
        timeout = connection.socket_timeout
        if timeout is None:
            return await _read_direct(connection, parser, replies)
        self._watch(connection, parser._stream, timeout)
        try:
            return await _read_direct(connection, parser, replies)
        finally:
            self._deadlines.pop(connection, None)

    # -- read timeouts ---------------------------------------------------------------------
    #
    # redis-py bounds every read with an `asyncio.timeout` of its own: a timer made and
    # cancelled per command, on the path from a reply's arrival back to the caller. The lane
    # keeps one timer instead, due at the earliest deadline of the exchanges in flight; when
    # it fires, an exchange past its deadline has its stream fail with `_ReadTimedOut`, which
    # the reader turns into redis-py's `TimeoutError` after dropping the connection.

    def _watch(self, connection: Any, stream: asyncio.StreamReader, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._deadlines[connection] = (deadline, stream)
        if self._watchdog is None:
            self._watchdog = loop.call_at(deadline, self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._watchdog = None
        now = loop.time()
        for connection, (deadline, stream) in list(self._deadlines.items()):
            if deadline <= now:
                del self._deadlines[connection]
                stream.set_exception(_ReadTimedOut())
        if self._deadlines:
            earliest = min(deadline for deadline, _ in self._deadlines.values())
            self._watchdog = loop.call_at(earliest, self._expire, loop)

    async def call(self, *command: bytes | str | int | float) -> Any:
        """One command, one round trip; an error reply raises."""
        reply = (await self.execute((command,)))[0]
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    async def aclose(self) -> None:
        """Disconnect every connection; later calls raise a connection error."""
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        connections, self._all, self._idle = self._all, [], []
        for connection in connections:
            await connection.disconnect()


class _NoPushes:
    """Stands for the push message type when there is none: nothing is an instance."""


class _ReadTimedOut(Exception):
    """Set on a stream by the lane's watchdog when an exchange outlives the socket timeout."""


def _reads_directly(connection: Any, parser: Any) -> bool:
    """Whether `_read_direct` can read for this connection: redis-py's hiredis parser, and on
    RESP3 one that names the push message type and handles those messages."""
    if _HiredisParser is None or type(parser) is not _HiredisParser:
        return False
    if str(getattr(connection, "protocol", 2)) == "2":
        return True
    return getattr(parser, "_hiredis_PushNotificationType", None) is not None and hasattr(
        parser, "handle_push_response"
    )


def _to_a_master(connection: Any) -> bool:
    """A Sentinel-managed connection to whatever the sentinels call the master."""
    return getattr(getattr(connection, "connection_pool", None), "is_master", False) is True


def _where(connection: Any) -> str:
    host_error = getattr(connection, "_host_error", None)
    return str(host_error()) if callable(host_error) else "the server"


async def _read_replies(connection: Any, replies: int) -> list[Any]:
    results: list[Any] = []
    for _ in range(replies):
        try:
            results.append(await connection.read_response())
        except ResponseError as error:
            results.append(error)
    return results


async def _read_direct(connection: Any, parser: Any, replies: int) -> list[Any]:
    """Read `replies` replies from redis-py's hiredis reader, as redis-py's own
    `read_response` does (errors in place, a connection error raised), without its per-call
    timeout context (the lane's watchdog bounds the exchange)."""
    reader = parser._reader
    stream = parser._stream
    push_type = getattr(parser, "_hiredis_PushNotificationType", None) or _NoPushes
    results: list[Any] = []
    try:
        while len(results) < replies:
            reply = reader.gets()
            if reply is _NOT_ENOUGH_DATA:
                data = await stream.read(_READ_SIZE)
                if not data:
                    raise RedisConnectionError("Connection closed by server.")
                reader.feed(data)
                continue
            if isinstance(reply, push_type):
                # RESP3 out-of-band messages (e.g. maintenance notices): redis-py's handlers
                # see them as they would on its own path; they answer no command.
                await parser.handle_push_response(reply)
                continue
            if isinstance(reply, RedisConnectionError):
                raise reply  # e.g. LOADING: redis-py raises these rather than return them
            if isinstance(reply, ReadOnlyError) and _to_a_master(connection):
                # As redis-py's Sentinel connections do: the master this connection reached
                # was demoted, so the retry asks the sentinels again.
                raise RedisConnectionError("The previous master is now a replica")
            if isinstance(reply, list) and reply and isinstance(reply[0], RedisConnectionError):
                raise reply[0]
            results.append(reply)
    except _ReadTimedOut:
        await connection.disconnect(nowait=True)
        raise RedisTimeoutError(f"Timeout reading from {_where(connection)}") from None
    except OSError as error:
        await connection.disconnect(nowait=True)
        raise RedisConnectionError(
            f"Error while reading from {_where(connection)} : {error.args}"
        ) from None
    except BaseException:
        # A reply left unread must never reach the next caller: drop the connection.
        await connection.disconnect(nowait=True)
        raise
    if stream.exception() is not None:
        # The watchdog fired as the last reply came in: the replies are whole, but the
        # stream now fails every read, so the connection is made afresh next time.
        await connection.disconnect(nowait=True)
    if connection.health_check_interval:
        connection.next_health_check = (
            asyncio.get_running_loop().time() + connection.health_check_interval
        )
    return results


async def _send(connection: Any, packed: list[bytes]) -> None:
    """Write a request, waiting (up to the socket timeout) only when the socket cannot take it
    all at once.

    redis-py's `send_packed_command` wraps every write in `asyncio.wait_for`, which on Python
    3.11 runs it as a task of its own: two extra turns of the event loop per command, more
    than the rest of a short request costs. A request that fits the socket's buffer is
    written without waiting, so it needs no timeout.
    """
    writer: Any = getattr(connection, "_writer", None)
    transport = getattr(writer, "transport", None)
    if transport is None or transport.is_closing():
        # Not the stream layout this was written for, or a connection the server closed:
        # redis-py's own send reconnects or reports it.
        await connection.send_packed_command(packed)
        return
    if connection.health_check_interval:
        await connection.check_health()  # a PING first when the interval has passed
    try:
        writer.writelines(packed)
        if transport.get_write_buffer_size():
            await asyncio.wait_for(writer.drain(), connection.socket_timeout)
    except asyncio.TimeoutError:
        await connection.disconnect(nowait=True)
        raise RedisTimeoutError("Timeout writing to socket") from None
    except OSError as error:
        await connection.disconnect(nowait=True)
        raise RedisConnectionError(f"Error while writing to socket: {error}") from error
    except BaseException:
        await connection.disconnect(nowait=True)
        raise
