"""The error hierarchy. Every error this package raises on purpose is a `SessionError`.

```
SessionError
 ├── InvalidItemError      (also ValueError and TypeError)
 ├── CorruptItemError
 ├── SessionClosedError    (also RuntimeError)
 ├── LockTimeoutError      (also TimeoutError)
 ├── LockLostError
 ├── ConfigurationError    (also ValueError)
 └── BackendError          the backend refused the operation (nothing of it applied)
      └── BackendUnavailableError   the backend cannot be reached within the time budget
```

Errors of the drivers (redis-py, sqlite3) never leave the public API bare: they are raised as
`BackendError` or `BackendUnavailableError`, with the driver's error as `__cause__`.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "ConfigurationError",
    "CorruptItemError",
    "InvalidItemError",
    "LockLostError",
    "LockTimeoutError",
    "SessionClosedError",
    "SessionError",
]


class SessionError(Exception):
    """Base class of every error raised by turnstore."""


class InvalidItemError(SessionError, ValueError, TypeError):
    """An item (or a metadata pair) cannot be stored; nothing of the call was written.

    It is a `TypeError` too because the SDK's sessions raise `TypeError` for items that
    `json.dumps` refuses, and callers written for them catch that.
    """


class CorruptItemError(SessionError):
    """A stored item cannot be decoded and the session was opened with `on_corrupt="raise"`."""

    def __init__(self, session_id: str, position: int, reason: str) -> None:
        self.session_id = session_id
        self.position = position
        self.reason = reason
        super().__init__(
            f"session {session_id!r}: stored item at position {position} cannot be decoded "
            f"({reason})"
        )


class SessionClosedError(SessionError, RuntimeError):
    """The session (or store) was closed; no call is accepted afterwards."""


class LockTimeoutError(SessionError, TimeoutError):
    """`lock()` was not acquired within its timeout."""


class LockLostError(SessionError):
    """A lock's lease lapsed while it was held: someone else may have held it meanwhile."""


class ConfigurationError(SessionError, ValueError):
    """A URL, option, session id or key prefix is not acceptable."""


class BackendError(SessionError):
    """The backend refused the operation: out of memory, a read-only replica, a missing
    permission, a full disk, a file that is not a database. Nothing of the refused write was
    applied. The driver's error is the `__cause__`; the message says what the backend said."""


class BackendUnavailableError(BackendError):
    """The backend cannot be reached, or did not answer, within the call's time budget."""
