"""The one owner of retries and of a call's time budget, and the driver's errors mapped to ours.

Every request to Redis runs through `run`: it sends, and when the outcome is unknown (a lost
connection, a reply that did not come) or the cluster is in flux (a slot moving, a failover),
it sends again, until the call's budget (`timeout`, default 10 s) or its attempts
(`retries + 1`) are spent. Nothing below it retries: the clients this package opens have
redis-py's own retries turned off (`Retry(NoBackoff(), 0)`), so a call makes at most
`retries + 1` connection attempts. Resending is safe because every script of this package is
idempotent (batch tokens, pop receipts, token-compared locks, state-setting writes).

An injected client keeps its own retry policy: when it resends failed commands itself, it is
the one place that does, and this module adds only the time budget and the cluster waits;
when it does not (`Retry(NoBackoff(), 0)`), this module resends as for its own clients.
"""

from __future__ import annotations

import asyncio
import math
import random
import ssl
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    BusyLoadingError,
    ClusterDownError,
    ClusterError,
    MasterDownError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..backend import request_answered
from ..errors import BackendError, BackendUnavailableError, ConfigurationError

__all__ = [
    "DEFAULT_BUDGET",
    "Budget",
    "Sends",
    "StartOver",
    "backend_error",
    "is_refused",
    "run",
    "run_operation",
]

_T = TypeVar("_T")

#: A reply's outcome is unknown: the request may or may not have run. Sent again.
LOST = (RedisConnectionError, RedisTimeoutError, OSError)
#: The cluster (or a replica set) is reconfiguring: the request did not run. Sent again after
#: a short wait, for as long as the budget lasts.
IN_FLUX = (TryAgainError, ClusterDownError, ClusterError, MasterDownError, BusyLoadingError)


class _Watchdog:
    """Deadlines of the calls in flight on one event loop, enforced by one timer.

    A timer per call (`asyncio.timeout`) costs a heap entry made and cancelled on every
    request, a visible share of a short one; here a call only records its deadline, and the
    one timer, due at the earliest deadline, cancels the tasks whose deadline has passed.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._due: dict[_Ticket, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def arm(self, ticket: _Ticket, when: float) -> None:
        self._due[ticket] = when
        if when < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = when
            self._timer = self._loop.call_at(when, self._fire)

    def disarm(self, ticket: _Ticket) -> None:
        self._due.pop(ticket, None)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        now = self._loop.time()
        for ticket, when in list(self._due.items()):
            if when <= now:
                del self._due[ticket]
                ticket.expired = True
                ticket.task.cancel()
        if self._due:
            earliest = min(self._due.values())
            self._timer_at = earliest
            self._timer = self._loop.call_at(earliest, self._fire)


class _Ticket:
    """One attempt's claim on the watchdog: the task to cancel at its deadline.

    `cancels` is how many cancellation requests the task had when the attempt started
    (`Task.cancelling()`, Python 3.11+ and tasks that backport it): the watchdog's own is
    the one above that count, whatever others left uncounted before (the `async-timeout`
    package that redis-py uses below Python 3.11.3 cancels without ever calling `uncancel`).
    """

    __slots__ = ("cancels", "expired", "taken_back", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.expired = False
        self.taken_back = False
        cancelling = getattr(task, "cancelling", None)
        self.cancels: int = cancelling() if cancelling is not None else 0


class _Attempt:
    """The attempt in flight of a call: what `attempt_started` needs to restart its clock."""

    __slots__ = ("deadline", "dog", "read_timeout", "ticket")

    def __init__(self, dog: _Watchdog, deadline: float, read_timeout: float) -> None:
        self.dog = dog
        self.deadline = deadline
        self.read_timeout = read_timeout
        self.ticket: _Ticket | None = None


_CURRENT: ContextVar[_Attempt | None] = ContextVar("turnstore_attempt", default=None)
#: The deadline of the operation in progress (`run_operation`): the requests it sends share
#: its budget rather than starting one each.
_OPERATION_DEADLINE: ContextVar[float | None] = ContextVar(
    "turnstore_operation_deadline", default=None
)


def attempt_started() -> None:
    """Called by a transport when a request that had to wait for a free connection is sent:
    the attempt's `socket_timeout` counts from now, so queueing for a connection is bounded
    by the call's `timeout` only, not taken for a server that does not answer."""
    attempt = _CURRENT.get()
    if attempt is not None and attempt.ticket is not None:
        loop = asyncio.get_running_loop()
        attempt.dog.arm(attempt.ticket, min(attempt.deadline, loop.time() + attempt.read_timeout))


_WATCHDOGS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watchdog] = (
    weakref.WeakKeyDictionary()
)


def _watchdog(loop: asyncio.AbstractEventLoop) -> _Watchdog:
    dog = _WATCHDOGS.get(loop)
    if dog is None:
        dog = _WATCHDOGS[loop] = _Watchdog(loop)
    return dog


def _take_back(ticket: _Ticket) -> bool:
    """Take back the watchdog's cancellation of an attempt; False when someone else
    cancelled the task during the attempt too (their cancellation must reach the caller).

    Without `Task.uncancel` (Python 3.10's own tasks) there is no telling: a cancellation
    that lands in the same loop iteration as the deadline is taken for the deadline's.
    """
    ticket.taken_back = True
    uncancel = getattr(ticket.task, "uncancel", None)
    return uncancel is None or uncancel() <= ticket.cancels


def _seconds(name: str, value: object, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be a number of seconds, not {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ConfigurationError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class Budget:
    """How long one call may take in all, and how often it may be sent.

    `timeout`: seconds one call may take, retries, waits and connecting included (default 10).
    `retries`: how many times a call whose outcome is unknown is sent again (default 3).
    `socket_timeout`: how long one attempt may wait for the server before it counts as lost
    and is sent again (default: 5 s, or `timeout` when that is shorter).
    `socket_connect_timeout`: how long one connection attempt may take (same default).
    """

    timeout: float = 10.0
    retries: int = 3
    socket_timeout: float | None = None
    socket_connect_timeout: float | None = None

    def __post_init__(self) -> None:
        _seconds("timeout", self.timeout)
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigurationError(f"retries must be an int >= 0, not {self.retries!r}")
        for name in ("socket_timeout", "socket_connect_timeout"):
            value = getattr(self, name)
            if value is not None:
                _seconds(name, value)

    @property
    def read_timeout(self) -> float:
        return self.socket_timeout if self.socket_timeout is not None else min(5.0, self.timeout)

    @property
    def connect_timeout(self) -> float:
        if self.socket_connect_timeout is not None:
            return self.socket_connect_timeout
        return min(5.0, self.timeout)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Budget:
        """A budget from keyword or URL options (only the four names above)."""
        return cls(**{k: v for k, v in options.items() if v is not None})


DEFAULT_BUDGET = Budget()
#: The option names a `Budget` takes.
BUDGET_OPTIONS = ("timeout", "retries", "socket_timeout", "socket_connect_timeout")


def is_refused(error: BaseException) -> bool:
    """The server refused the connection for good (credentials, certificate): a retry would
    fail the same way. The one place that decides it."""
    seen: BaseException | None = error
    for _ in range(8):  # redis-py raises its ConnectionError while handling the cause
        if seen is None:
            return False
        if isinstance(seen, (AuthenticationError, ssl.SSLCertVerificationError)):
            return True
        if isinstance(seen, ResponseError) and _auth_reply(str(seen)):
            return True
        if "certificate verify failed" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _auth_reply(text: str) -> bool:
    upper = text.upper()
    return (
        upper.startswith(("NOAUTH", "WRONGPASS"))
        or "HELLO MUST BE CALLED WITH THE CLIENT ALREADY AUTHENTICATED" in upper
        or "AUTHENTICATION REQUIRED" in upper
        or "INVALID PASSWORD" in upper
        or "INVALID USERNAME-PASSWORD" in upper
    )


def backend_error(error: BaseException, where: str) -> BackendError:
    """Our error for a driver's `error` (`where` names the server, password masked)."""
    text = str(error) or type(error).__name__
    if isinstance(error, BackendError):
        return error
    if is_refused(error):
        if isinstance(error, ssl.SSLError) or "certificate" in text:
            return BackendError(f"{where}: the TLS certificate was refused ({text})")
        return BackendError(f"{where}: the server refused the credentials ({text})")
    if isinstance(error, OutOfMemoryError):
        return BackendError(f"{where}: out of memory, nothing was written ({text})")
    if isinstance(error, ReadOnlyError):
        return BackendError(f"{where}: the server is a read-only replica ({text})")
    if isinstance(error, (NoPermissionError, AuthorizationError)):
        return BackendError(f"{where}: permission denied ({text})")
    if isinstance(error, (*LOST, *IN_FLUX, asyncio.TimeoutError)) or _unreachable(error):
        return BackendUnavailableError(f"{where}: {text}")
    if isinstance(error, (RedisError, RedisClusterException)):
        return BackendError(f"{where}: {text}")
    return BackendError(f"{where}: {type(error).__name__}: {text}")


def _unreachable(error: BaseException) -> bool:
    """A redis-py Cluster error that only says no node could be reached."""
    if not isinstance(error, RedisClusterException):
        return False
    if "cannot be connected" in str(error):
        return True
    seen = error.__cause__ or error.__context__
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, LOST):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class Sends:
    """How many times `run` sent a request (a caller's view of whether it went out once)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class StartOver(Exception):
    """Raised by an operation of several requests that found its view of the servers out of
    date (a Cluster slot left the node it was read from, or is moving): nothing it did
    changed anything, and `run_operation` starts it again after a short wait."""


#: First and longest wait before an operation starts over.
_START_OVER_PAUSE = 0.02
_START_OVER_PAUSE_MAX = 0.5


async def run_operation(
    operation: Callable[[], Awaitable[_T]], budget: Budget, where: str, what: str
) -> _T:
    """`await operation()` (several requests, each sent through `run`) within one time budget
    in all: every request it sends counts against the same deadline, and when it raises
    `StartOver` it is started again, waiting a little longer each time, until the budget is
    spent (then `BackendUnavailableError`, saying `what` was being done).

    Only this restart lives here; a request's own resends stay in `run`, so a failure is
    never retried at two depths.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget.timeout
    outer = _OPERATION_DEADLINE.get()
    if outer is not None:
        deadline = min(deadline, outer)
    reset = _OPERATION_DEADLINE.set(deadline)
    pause = _START_OVER_PAUSE
    try:
        while True:
            try:
                return await operation()
            except StartOver as error:
                left = deadline - loop.time()
                if left <= pause:
                    raise BackendUnavailableError(
                        f"{where}: {what} could not finish within the {budget.timeout:g} s "
                        f"budget ({error or 'the servers kept changing'})"
                    ) from error
                await asyncio.sleep(pause)
                pause = min(pause * 2, _START_OVER_PAUSE_MAX)
    finally:
        _OPERATION_DEADLINE.reset(reset)


def _backoff(attempt: int) -> float:
    """Full jitter, 50 ms doubling up to 1 s."""
    return random.uniform(0, min(1.0, 0.05 * 2**attempt))


async def run(
    send: Callable[[Sequence[Any]], Awaitable[list[Any]]],
    commands: Sequence[Any],
    budget: Budget,
    where: str,
    *,
    resend_lost: bool = True,
    bound_attempts: bool = True,
    sends: Sends | None = None,
) -> list[Any]:
    """The replies of `send(commands)` within `budget`: sent again when the outcome is
    unknown (`resend_lost`) or the cluster is in flux (an in-flux error reply counts as not
    run); our error when it cannot succeed.

    The deadline is enforced on every attempt, so a call never outlives `budget.timeout`;
    with `bound_attempts`, an attempt that waits longer than `budget.read_timeout` counts as
    lost (the clients this package opens leave redis-py's own socket timeout off: on Python
    3.11 it runs every write as a task of its own, a cost the watchdog here does not have).
    `sends` counts the attempts made, whatever their outcome.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    dog = _watchdog(loop)
    deadline = loop.time() + budget.timeout
    operation = _OPERATION_DEADLINE.get()
    if operation is not None:
        deadline = min(deadline, operation)
    current = _Attempt(dog, deadline, budget.read_timeout) if bound_attempts else None
    reset = _CURRENT.set(current)
    try:
        replies = await _attempts(
            send, commands, budget, where, resend_lost, deadline, current, task, sends
        )
    finally:
        _CURRENT.reset(reset)
    request_answered()
    return replies


async def _attempts(
    send: Callable[[Sequence[Any]], Awaitable[list[Any]]],
    commands: Sequence[Any],
    budget: Budget,
    where: str,
    resend_lost: bool,
    deadline: float,
    current: _Attempt | None,
    task: asyncio.Task[Any],
    sends: Sends | None,
) -> list[Any]:
    loop = asyncio.get_running_loop()
    dog = _watchdog(loop)
    lost = 0
    last: BaseException | None = None
    while True:
        ticket = _Ticket(task)
        if current is None:
            until = deadline
        else:
            until = min(deadline, loop.time() + budget.read_timeout)
            current.ticket = ticket
        dog.arm(ticket, until)
        if sends is not None:
            sends.count += 1
        try:
            replies = await send(commands)
            for reply in replies:
                if isinstance(reply, IN_FLUX):
                    raise reply  # did not run: wait and send again
            return replies
        except asyncio.CancelledError as error:
            if not ticket.expired or not _take_back(ticket):
                raise
            until = min(deadline, loop.time())  # the clock may have been restarted
            if until < deadline and resend_lost and lost < budget.retries:
                lost += 1
                last = RedisTimeoutError(
                    f"no reply within socket_timeout={budget.read_timeout:g} s"
                )
                continue  # the attempt's connection was dropped; sent again at once
            if until < deadline:
                raise BackendUnavailableError(
                    f"{where}: no reply within socket_timeout={budget.read_timeout:g} s"
                ) from (last or error)
            raise BackendUnavailableError(
                f"{where}: no answer within the {budget.timeout:g} s budget"
                + (f" (last error: {last})" if last else "")
            ) from (last or error)
        except IN_FLUX as error:
            last = error
            pause = 0.05 + _backoff(2)
        except (*LOST, RedisClusterException) as error:
            if not isinstance(error, LOST) and not _unreachable(error):
                raise backend_error(error, where) from error
            if not resend_lost or is_refused(error):
                raise backend_error(error, where) from error
            lost += 1
            last = error
            if lost > budget.retries:
                raise backend_error(error, where) from error
            pause = _backoff(lost - 1)
        except RedisError as error:
            raise backend_error(error, where) from error
        finally:
            dog.disarm(ticket)
            if ticket.expired and not ticket.taken_back:
                # The watchdog's cancellation ended as something else (the driver turned
                # it into its own timeout, or finished anyway): still take it back, so
                # that the task's count of cancellations stays the caller's.
                _take_back(ticket)
        if loop.time() + pause >= deadline:
            raise BackendUnavailableError(
                f"{where}: gave up within the {budget.timeout:g} s budget ({last})"
            ) from last
        await asyncio.sleep(pause)
