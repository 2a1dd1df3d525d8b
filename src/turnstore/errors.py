"""The error hierarchy. Every error this package raises on purpose is a `SessionError`.

```
SessionError
 ├── InvalidItemError      (also ValueError and TypeError)
 ├── CorruptItemError
 ├── SessionClosedError    (also RuntimeError)
 ├── LockTimeoutError      (also TimeoutError)
 ├── LockLostError
 └── ConfigurationError    (also ValueError)
```
"""

from __future__ import annotations

__all__ = [
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
