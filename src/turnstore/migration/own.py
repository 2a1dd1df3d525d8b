"""This package's own layout, at any store URL (SQLite files opened read-only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..records import export_session, export_sessions
from ..store import SessionStore, open_store
from .base import PlannedSession, SourceLayout, SourceSession

__all__ = ["OwnLayout", "read_only_options"]

#: Sessions asked for per `list_sessions` call while planning.
PAGE_SIZE = 10_000


def read_only_options(url: str) -> dict[str, Any]:
    """Options that open the store at `url` without writing to it, where the backend can."""
    return {"read_only": True} if url.split("://", 1)[0].lower() == "sqlite" else {}


class OwnLayout(SourceLayout):
    """A store of this package, read through the public store API."""

    name = "own"

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url)
        self.store: SessionStore = open_store(url, **options, **read_only_options(url))

    async def plan(self) -> list[PlannedSession]:
        planned: list[PlannedSession] = []
        cursor: str | None = None
        while True:
            page = await self.store.list_sessions(limit=PAGE_SIZE, cursor=cursor)
            planned.extend(
                PlannedSession(info.session_id, info.item_count, info.updated_at.timestamp())
                for info in page.sessions
            )
            cursor = page.next_cursor
            if cursor is None:
                return planned

    async def read(self, planned: PlannedSession) -> SourceSession | None:
        record = await export_session(self.store, planned.session_id)
        return None if record is None else SourceSession(record)

    async def read_many(self, planned: Sequence[PlannedSession]) -> list[SourceSession | None]:
        records = await export_sessions(self.store, [p.session_id for p in planned])
        return [None if record is None else SourceSession(record) for record in records]

    async def close(self) -> None:
        await self.store.close()
