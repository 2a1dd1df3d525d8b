"""The DDL of one sessions/messages table pair: install, backfill, read-only stand-ins.

Kept apart from the statements a session runs (schema.py): this runs when a connection
opens, once per file and process, never inside an operation.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from ..errors import BackendError

__all__ = ["NOW_MS_SQL", "SIDE_TABLES", "Installer", "ms_of", "quote"]

#: The side tables, by kind; each is named `<sessions_table>_<kind>`.
SIDE_TABLES = ("state", "metadata", "tokens", "locks", "index", "indexed", "counters")

#: The current time in milliseconds, by SQLite's clock (the same system clock as Python's).
NOW_MS_SQL = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)"


def quote(name: str) -> str:
    # Validated identifiers hold no quote characters; quoting keeps keywords usable as names.
    return f'"{name}"'


def ms_of(column: str) -> str:
    """SQL for the milliseconds of one of the SDK's TIMESTAMP columns (seconds precision)."""
    return f"CAST(strftime('%s', {column}) AS INTEGER) * 1000"


class Installer:
    """Creates the SDK's tables, the side tables and their triggers, and backfills state."""

    def __init__(self, sessions_table: str, messages_table: str, side: Mapping[str, str]) -> None:
        self.sessions_table = sessions_table
        self.messages_table = messages_table
        names = [sessions_table, messages_table, *side.values()]
        s, m = quote(sessions_table), quote(messages_table)
        st, md, tk, lk, ix, rg, ct = (quote(side[kind]) for kind in SIDE_TABLES)
        self._registry = rg
        self._state = st
        prefix = sessions_table
        self._objects = [
            *names,
            f"idx_{messages_table}_session_id",
            f"{prefix}_state_updated",
            f"{prefix}_state_expires",
            f"{prefix}_on_session_insert",
            f"{prefix}_on_session_update",
            f"{prefix}_on_session_delete",
            f"{prefix}_on_message_insert",
            f"{prefix}_on_message_delete",
            f"{prefix}_index_session",
            f"{prefix}_on_state_insert",
            f"{prefix}_on_state_delete",
            f"{prefix}_on_state_touch",
            f"{prefix}_on_metadata_insert",
            f"{prefix}_on_metadata_update",
            f"{prefix}_on_metadata_delete",
        ]
        # The metadata index: one row per (session, indexed key), ordered for a page of one
        # key=value pair newest first. Which keys are indexed is in the registry, kept in the
        # file, not in one store's options: the triggers keep the index exact whoever writes
        # (the SDK, a standalone session, a store opened without `index_metadata`).
        # `resume_after` is NULL once a key's index is complete; else `reindex()` continues
        # its walk of the sessions (by id) after that id.
        index_entry = (
            f"INSERT INTO {ix} (key, value, updated_ms, session_id) "
            f"SELECT NEW.key, NEW.value, updated_ms, NEW.session_id FROM {st} "
            "WHERE session_id = NEW.session_id"
        )
        drop_entry = f"DELETE FROM {ix} WHERE session_id = {{row}}.session_id AND key = {{row}}.key"
        self._ddl = [
            # The SDK's tables, column for column.
            f"""CREATE TABLE IF NOT EXISTS {s} (
                session_id TEXT PRIMARY KEY,
                created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
            )""",
            f"""CREATE TABLE IF NOT EXISTS {m} (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                session_id TEXT NOT NULL,
                message_data TEXT NOT NULL,
                created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                FOREIGN KEY (session_id) REFERENCES {s} (session_id) ON DELETE CASCADE
            )""",
            f"CREATE INDEX IF NOT EXISTS {quote(f'idx_{messages_table}_session_id')} "
            f"ON {m} (session_id, id)",
            # Side tables.
            f"""CREATE TABLE IF NOT EXISTS {st} (
                session_id TEXT PRIMARY KEY,
                created_ms INTEGER NOT NULL,
                updated_ms INTEGER NOT NULL,
                expires_ms INTEGER,
                item_count INTEGER NOT NULL DEFAULT 0
            )""",
            f"CREATE INDEX IF NOT EXISTS {quote(f'{prefix}_state_updated')} "
            f"ON {st} (updated_ms, session_id)",
            f"CREATE INDEX IF NOT EXISTS {quote(f'{prefix}_state_expires')} "
            f"ON {st} (expires_ms) WHERE expires_ms IS NOT NULL",
            f"""CREATE TABLE IF NOT EXISTS {md} (
                session_id TEXT NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (session_id, key)
            ) WITHOUT ROWID""",
            f"""CREATE TABLE IF NOT EXISTS {tk} (
                session_id TEXT NOT NULL,
                token TEXT NOT NULL,
                expires_ms INTEGER NOT NULL,
                PRIMARY KEY (session_id, token)
            ) WITHOUT ROWID""",
            f"""CREATE TABLE IF NOT EXISTS {lk} (
                session_id TEXT PRIMARY KEY,
                token TEXT NOT NULL,
                expires_ms INTEGER NOT NULL
            ) WITHOUT ROWID""",
            # Triggers: they fire for the SDK's writes too. `OR IGNORE` because the SDK
            # inserts its session row with INSERT OR IGNORE, whose policy the trigger inherits.
            f"""CREATE TRIGGER IF NOT EXISTS {quote(f"{prefix}_on_session_insert")}
            AFTER INSERT ON {s} BEGIN
                INSERT OR IGNORE INTO {st} (session_id, created_ms, updated_ms)
                VALUES (NEW.session_id, {NOW_MS_SQL}, {NOW_MS_SQL});
            END""",
            f"""CREATE TRIGGER IF NOT EXISTS {quote(f"{prefix}_on_session_update")}
            AFTER UPDATE OF updated_at ON {s} BEGIN
                UPDATE {st} SET updated_ms = MAX(updated_ms, {NOW_MS_SQL})
                WHERE session_id = NEW.session_id;
            END""",
            f"""CREATE TRIGGER IF NOT EXISTS {quote(f"{prefix}_on_session_delete")}
            AFTER DELETE ON {s} BEGIN
                DELETE FROM {st} WHERE session_id = OLD.session_id;
                DELETE FROM {md} WHERE session_id = OLD.session_id;
            END""",
            f"""CREATE TRIGGER IF NOT EXISTS {quote(f"{prefix}_on_message_insert")}
            AFTER INSERT ON {m} BEGIN
                UPDATE {st} SET item_count = item_count + 1 WHERE session_id = NEW.session_id;
            END""",
            f"""CREATE TRIGGER IF NOT EXISTS {quote(f"{prefix}_on_message_delete")}
            AFTER DELETE ON {m} BEGIN
                UPDATE {st} SET item_count = item_count - 1 WHERE session_id = OLD.session_id;
            END""",
            f"""CREATE TABLE IF NOT EXISTS {ix} (
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                updated_ms INTEGER NOT NULL,
                session_id TEXT NOT NULL,
                PRIMARY KEY (key, value, updated_ms, session_id)
            ) WITHOUT ROWID""",
            f"CREATE UNIQUE INDEX IF NOT EXISTS {quote(f'{prefix}_index_session')} "
            f"ON {ix} (session_id, key)",
            f"""CREATE TABLE IF NOT EXISTS {rg} (
                key TEXT PRIMARY KEY,
                resume_after TEXT
            ) WITHOUT ROWID""",
            # The number of state rows, so counting live sessions does not read them all.
            f"""CREATE TABLE IF NOT EXISTS {ct} (
                name TEXT PRIMARY KEY,
                n INTEGER NOT NULL
            ) WITHOUT ROWID""",
            f"""CREATE TRIGGER IF NOT EXISTS {quote(f"{prefix}_on_state_insert")}
            AFTER INSERT ON {st} BEGIN
                UPDATE {ct} SET n = n + 1 WHERE name = 'sessions';
            END""",
            f"""CREATE TRIGGER IF NOT EXISTS {quote(f"{prefix}_on_state_delete")}
            AFTER DELETE ON {st} BEGIN
                UPDATE {ct} SET n = n - 1 WHERE name = 'sessions';
                DELETE FROM {ix} WHERE session_id = OLD.session_id;
            END""",
            f"""CREATE TRIGGER IF NOT EXISTS {quote(f"{prefix}_on_state_touch")}
            AFTER UPDATE OF updated_ms ON {st} WHEN NEW.updated_ms IS NOT OLD.updated_ms BEGIN
                UPDATE {ix} SET updated_ms = NEW.updated_ms WHERE session_id = NEW.session_id;
            END""",
            f"""CREATE TRIGGER IF NOT EXISTS {quote(f"{prefix}_on_metadata_insert")}
            AFTER INSERT ON {md} WHEN NEW.key IN (SELECT key FROM {rg}) BEGIN
                {drop_entry.format(row="NEW")};
                {index_entry};
            END""",
            f"""CREATE TRIGGER IF NOT EXISTS {quote(f"{prefix}_on_metadata_update")}
            AFTER UPDATE OF value ON {md} WHEN NEW.key IN (SELECT key FROM {rg}) BEGIN
                {drop_entry.format(row="NEW")};
                {index_entry};
            END""",
            f"""CREATE TRIGGER IF NOT EXISTS {quote(f"{prefix}_on_metadata_delete")}
            AFTER DELETE ON {md} WHEN OLD.key IN (SELECT key FROM {rg}) BEGIN
                {drop_entry.format(row="OLD")};
            END""",
        ]
        # Sessions the SDK wrote before the triggers existed; counts recomputed in case the
        # triggers were missing while messages changed.
        self._backfill = [
            f"""INSERT OR IGNORE INTO {st} (session_id, created_ms, updated_ms)
            SELECT session_id,
                   COALESCE({ms_of("created_at")}, {NOW_MS_SQL}),
                   COALESCE({ms_of("updated_at")}, {ms_of("created_at")}, {NOW_MS_SQL})
            FROM {s} WHERE true""",
            f"""UPDATE {st} SET item_count =
                (SELECT COUNT(*) FROM {m} WHERE {m}.session_id = {st}.session_id)""",
            f"INSERT OR REPLACE INTO {ct} (name, n) "
            f"VALUES ('sessions', (SELECT COUNT(*) FROM {st}))",
        ]

        # Stand-ins for a read-only connection to a file without the side tables (one the
        # SDK wrote): temporary, so the file is untouched; they shadow the missing names.
        self._side_tables = dict(side)
        self._stand_in_state = f"""CREATE TEMP VIEW {st} AS
            SELECT session_id,
                   COALESCE({ms_of("created_at")}, 0) AS created_ms,
                   COALESCE({ms_of("updated_at")}, {ms_of("created_at")}, 0) AS updated_ms,
                   NULL AS expires_ms,
                   (SELECT COUNT(*) FROM main.{m} WHERE main.{m}.session_id = {s}.session_id)
                       AS item_count
            FROM main.{s}
            UNION ALL
            SELECT session_id, COALESCE(MIN({ms_of("created_at")}), 0),
                   COALESCE(MAX({ms_of("created_at")}), 0), NULL, COUNT(*)
            FROM main.{m}
            WHERE session_id NOT IN (SELECT session_id FROM main.{s}) GROUP BY session_id"""
        self._stand_in_tables = {
            "metadata": f"CREATE TEMP TABLE {md} (session_id TEXT, key TEXT, value TEXT)",
            "tokens": f"CREATE TEMP TABLE {tk} (session_id TEXT, token TEXT, expires_ms INTEGER)",
            "locks": f"CREATE TEMP TABLE {lk} (session_id TEXT, token TEXT, expires_ms INTEGER)",
            "index": f"CREATE TEMP TABLE {ix} "
            "(key TEXT, value TEXT, updated_ms INTEGER, session_id TEXT)",
            "indexed": f"CREATE TEMP TABLE {rg} (key TEXT, resume_after TEXT)",
            # After the state stand-in (if any): `{st}` is whichever the connection sees.
            "counters": f"CREATE TEMP VIEW {ct} AS SELECT 'sessions' AS name, COUNT(*) AS n "
            f"FROM {st}",
        }

    def _missing(self, conn: sqlite3.Connection) -> bool:
        present = {
            name.lower()
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'index', 'trigger')"
            )
        }
        return any(name.lower() not in present for name in self._objects)

    def install(self, conn: sqlite3.Connection) -> None:
        """Create whatever is missing, in one write transaction (idempotent, process-safe).

        `conn` must be in autocommit mode (`isolation_level=None`).
        """
        if not self._missing(conn):
            return  # the common case: no write lock taken just to open a file
        conn.execute("BEGIN IMMEDIATE")
        try:
            if self._missing(conn):  # another process may have installed it meanwhile
                for statement in self._ddl:
                    conn.execute(statement)
                for statement in self._backfill:
                    conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def register(self, conn: sqlite3.Connection, keys: tuple[str, ...]) -> None:
        """Add `keys` to the file's metadata index (`conn` in autocommit mode).

        A key registered while the file holds no session is complete at once; else its index
        is built by `reindex()` (meanwhile, listings filtered on it scan, as for any key that
        is not indexed). Sessions written after this are indexed by the triggers.
        """
        if not keys:
            return
        present = {key for (key,) in conn.execute(f"SELECT key FROM {self._registry}")}
        if all(key in present for key in keys):
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            empty = conn.execute(f"SELECT 1 FROM {self._state} LIMIT 1").fetchone() is None
            conn.executemany(
                f"INSERT OR IGNORE INTO {self._registry} (key, resume_after) VALUES (?, ?)",
                [(key, None if empty else "") for key in keys],
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def stand_in(self, conn: sqlite3.Connection, path: str) -> None:
        """Make a read-only connection read any file that has the SDK's tables.

        Side tables the file lacks are replaced, for this connection only, by temporary
        stand-ins: sessions, times and counts come from the SDK's tables, there is no
        metadata and no expiry. `BackendError` names the file when the SDK's tables are
        missing (a different file, or other table names).
        """
        present = {
            name.lower()
            for (name,) in conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")
        }
        missing = [
            t for t in (self.sessions_table, self.messages_table) if t.lower() not in present
        ]
        if missing:
            found = ", ".join(sorted(present)) or "none"
            raise BackendError(
                f"SQLite database {path} has no table {missing[0]!r} (its tables: {found}); "
                "name the tables with ?sessions_table=...&messages_table=..."
            )
        for kind, name in self._side_tables.items():
            if name.lower() in present:
                continue
            if kind == "state":
                conn.execute(self._stand_in_state)
            else:
                conn.execute(self._stand_in_tables[kind])
