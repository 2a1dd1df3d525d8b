"""What every reader of a source layout provides, and `open_source` to pick one."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from ..records import SessionRecord
from ..store import gather_bounded
from ..urls import mask_url

__all__ = ["LAYOUTS", "PlannedSession", "SourceLayout", "SourceSession", "open_source"]

#: The layouts `open_source` reads, as `migrate --from-layout` names them.
LAYOUTS = ("own", "sdk", "openai-agents-redis")


@dataclass(frozen=True)
class PlannedSession:
    """A session to copy: its id, size and last update (seconds since the epoch)."""

    session_id: str
    item_count: int
    updated: float
    #: Where the reader finds it (keys, for the Redis layouts).
    locator: Any = None


@dataclass(frozen=True)
class SourceSession:
    """A session as read from the source, and what of it the record could not hold."""

    record: SessionRecord
    #: One phrase per piece of the source session left behind (say, a hash field that is
    #: not text); empty when everything was carried.
    not_carried: tuple[str, ...] = ()


class SourceLayout(ABC):
    """Where `migrate` reads from."""

    #: The layout's name, as `--from-layout` takes it.
    name: str

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def shown_url(self) -> str:
        return mask_url(self.url)

    @abstractmethod
    async def plan(self) -> list[PlannedSession]:
        """Every session of the source."""

    @abstractmethod
    async def read(self, planned: PlannedSession) -> SourceSession | None:
        """The session's content; None when it is gone since the plan was made."""

    async def read_many(self, planned: Sequence[PlannedSession]) -> list[SourceSession | None]:
        """`read` of each planned session, in order. This generic form reads them
        concurrently, a bounded number at once; a layout may read a batch in one request."""
        return await gather_bounded([self.read(session) for session in planned])

    @abstractmethod
    async def close(self) -> None: ...


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def open_source(layout: str, url: str, **options: Any) -> SourceLayout:
    """The reader of `layout` at `url` (no I/O yet).

    `options` go to the store the reader opens (its time budget: `busy_timeout` for SQLite,
    `timeout` for Redis, where each raw command of the Redis key readers is bounded by it
    too). `ConfigurationError` for an unknown layout or a URL the layout cannot be read from.
    """
    scheme = _scheme(url)
    if layout == "own":
        from .own import OwnLayout

        return OwnLayout(url, **options)
    if layout == "sdk":
        if scheme == "sqlite":
            from .sdk_sqlite import SdkSQLiteLayout

            return SdkSQLiteLayout(url, **options)
        from .sdk_redis import SdkRedisLayout

        return SdkRedisLayout(url, **options)
    if layout == "openai-agents-redis":
        if scheme == "sqlite":
            raise ConfigurationError(
                "--from-layout openai-agents-redis reads a Redis URL, not sqlite://"
            )
        from .openai_agents_redis import OpenAgentsRedisLayout

        return OpenAgentsRedisLayout(url, **options)
    raise ConfigurationError(f"unknown source layout {layout!r}; known: {', '.join(LAYOUTS)}")
