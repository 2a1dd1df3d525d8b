"""The per-session lock shared by every process that uses the same storage.

One holder at a time. The holder's lease is renewed in the background while it holds the
lock; if the holder dies the lease lapses and the next caller gets the lock. Release and
renewal compare the holder's random token, so a holder never removes someone else's lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import secrets
from collections.abc import Awaitable, Callable
from types import TracebackType

from .errors import ConfigurationError, LockLostError, LockTimeoutError

__all__ = ["SessionLock"]

logger = logging.getLogger("turnstore")


class SessionLock:
    """`async with session.lock(timeout=10, lease=30): ...`

    Raises `LockTimeoutError` when the lock is not acquired within `timeout` seconds, and
    `LockLostError` on exit when the lease could not be kept (the lock may have been taken
    by someone else meanwhile).
    """

    def __init__(
        self,
        session_id: str,
        *,
        acquire: Callable[[str, int], Awaitable[bool]],
        renew: Callable[[str, int], Awaitable[bool]],
        release: Callable[[str], Awaitable[bool]],
        timeout: float,
        lease: float,
    ) -> None:
        for name, value in (("timeout", timeout), ("lease", lease)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigurationError(f"{name} must be a number of seconds, not {value!r}")
            if not math.isfinite(value) or value < 0 or (name == "lease" and value < 0.01):
                raise ConfigurationError(f"{name} is out of range: {value!r}")
        self.session_id = session_id
        self._acquire = acquire
        self._renew = renew
        self._release = release
        self.timeout = float(timeout)
        self.lease = float(lease)
        self._lease_ms = max(10, round(self.lease * 1000))
        self._token = secrets.token_urlsafe(16)
        self._renewer: asyncio.Task[None] | None = None
        self._lost = False
        self._held = False
        # Until when (event-loop clock) the lease is known to hold: measured from before the
        # request that took or renewed it, so it never overestimates.
        self._valid_until = 0.0

    @property
    def held(self) -> bool:
        """True while this holder has the lock (as far as it knows)."""
        return self._held and not self._lost

    async def __aenter__(self) -> SessionLock:
        if self._held:
            raise RuntimeError("this lock object is already held; it is not reentrant")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        delay = 0.005
        while True:
            sent_at = loop.time()
            if await self._acquire(self._token, self._lease_ms):
                self._valid_until = sent_at + self.lease
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise LockTimeoutError(
                    f"lock on session {self.session_id!r} not acquired within {self.timeout} s"
                )
            await asyncio.sleep(min(remaining, delay * (0.5 + random.random())))
            delay = min(delay * 2, 0.25)
        self._held = True
        self._lost = False
        self._renewer = asyncio.create_task(self._keep_lease())
        return self

    async def _keep_lease(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.lease / 3
        while True:
            await asyncio.sleep(interval)
            sent_at = loop.time()
            try:
                still_ours = await self._renew(self._token, self._lease_ms)
            except Exception:  # a failed renewal is retried at the next tick
                logger.warning("lock on session %r: lease renewal failed", self.session_id)
                continue
            if not still_ours:
                self._lost = True
                logger.warning("lock on session %r was lost (lease lapsed)", self.session_id)
                return
            self._valid_until = sent_at + self.lease

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        self._held = False
        lease_held = asyncio.get_running_loop().time() < self._valid_until
        released = await self._release(self._token)
        # Nothing to release while the lease still held means a resent release (its first
        # run's reply was lost) found its own work done, not that the lock was lost.
        if (self._lost or not (released or lease_held)) and exc_type is None:
            raise LockLostError(
                f"lock on session {self.session_id!r} was lost while held: its lease "
                f"({self.lease} s) lapsed and another holder may have run meanwhile"
            )
