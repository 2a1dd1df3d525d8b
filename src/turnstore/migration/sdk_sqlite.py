"""The tables of the SDK's `SQLiteSession` (`agent_sessions`, `agent_messages`).

Read through a read-only SQLite store: the file is opened `mode=ro` on the backend's worker
thread and never changes. A file only the SDK wrote has times and counts from its tables;
one this package also wrote keeps its metadata and expiry times, from the side tables.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError
from .own import OwnLayout

__all__ = ["SdkSQLiteLayout"]


class SdkSQLiteLayout(OwnLayout):
    """`sqlite:///file.db` (`?sessions_table=...&messages_table=...` for other names)."""

    name = "sdk"

    def __init__(self, url: str, **options: Any) -> None:
        from ..sqlite.connection import is_memory_path, parse_sqlite_url

        if is_memory_path(parse_sqlite_url(url).path):
            raise ConfigurationError(
                "an in-memory database holds nothing to migrate; name the file"
            )
        super().__init__(url, **options)
