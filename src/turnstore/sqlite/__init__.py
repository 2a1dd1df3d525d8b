"""The SQLite backend: the SDK's tables, WAL, one worker thread per connection."""

from .session import SQLiteSession
from .store import SQLiteStore, open_sqlite_store

__all__ = ["SQLiteSession", "SQLiteStore", "open_sqlite_store"]
