"""What the stores report about a session."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

__all__ = ["SessionInfo", "SessionPage", "datetime_from_ms"]


@dataclass(frozen=True)
class SessionInfo:
    """A snapshot of one session. Times are timezone-aware UTC."""

    session_id: str
    created_at: datetime
    updated_at: datetime
    item_count: int
    expires_at: datetime | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionPage:
    """One page of `list_sessions`: most recently updated first."""

    sessions: list[SessionInfo]
    next_cursor: str | None = None


def datetime_from_ms(ms: int | float) -> datetime:
    """A UTC datetime from milliseconds since the epoch."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
