"""The SQLite layout and every statement run against it.

The SDK's two tables are used as the SDK defines them, so a file either side wrote reads back
on the other. Everything else lives in side tables named after the sessions table:

```
agent_sessions            SDK: session_id PK, created_at, updated_at (UTC text, seconds)
agent_messages            SDK: id AUTOINCREMENT, session_id, message_data (JSON text), created_at
agent_sessions_state      one row per session: created_ms, updated_ms, expires_ms, item_count
agent_sessions_metadata   (session_id, key) -> value
agent_sessions_tokens     (session_id, token) -> expires_ms: batch tokens and idempotency keys
agent_sessions_locks      session_id -> holder token, lease deadline (ms): `session.lock()`
```

Triggers on the SDK's tables keep the state table exact whoever writes, the SDK's own
`SQLiteSession` included: a new session row creates its state row, a changed `updated_at`
moves `updated_ms`, every inserted or deleted message moves `item_count`, and a deleted
session row takes its state and metadata with it (not its lock, which a holder may keep
across a clear, nor its batch tokens, which must outlive a clear until their own deadline).
Sessions that existed before the triggers did are backfilled from `created_at` and
`updated_at` when the schema is installed. So counting, listing and inspecting a session read
one indexed row, never the messages.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import BackendError, ConfigurationError
from ..info import SessionInfo, datetime_from_ms

__all__ = ["Schema", "StateRow", "validate_table_name"]

_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

#: The current time in milliseconds, by SQLite's clock (the same system clock as Python's).
NOW_MS_SQL = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)"


def validate_table_name(name: object, what: str = "table name") -> str:
    """Return `name` if it is a plain SQL identifier that SQLite does not reserve."""
    if not isinstance(name, str) or not _TABLE_NAME.match(name):
        raise ConfigurationError(f"{what} must match [A-Za-z_][A-Za-z0-9_]{{0,62}}, not {name!r}")
    if name.lower().startswith("sqlite_"):
        raise ConfigurationError(f"{what} {name!r} is reserved by SQLite (sqlite_ prefix)")
    return name


def _quote(name: str) -> str:
    # Validated identifiers hold no quote characters; quoting keeps keywords usable as names.
    return f'"{name}"'


def _ms_of(column: str) -> str:
    """SQL for the milliseconds of one of the SDK's TIMESTAMP columns (seconds precision)."""
    return f"CAST(strftime('%s', {column}) AS INTEGER) * 1000"


@dataclass(frozen=True)
class StateRow:
    """A live session's state row."""

    created_ms: int
    updated_ms: int
    expires_ms: int | None
    item_count: int


class Schema:
    """Table names (validated, quoted) and the statements of one sessions/messages pair."""

    def __init__(
        self, sessions_table: str = "agent_sessions", messages_table: str = "agent_messages"
    ) -> None:
        self.sessions_table = validate_table_name(sessions_table, "sessions_table")
        self.messages_table = validate_table_name(messages_table, "messages_table")
        side = {
            kind: f"{sessions_table}_{kind}" for kind in ("state", "metadata", "tokens", "locks")
        }
        names = [sessions_table, messages_table, *side.values()]
        if len({name.lower() for name in names}) != len(names):
            raise ConfigurationError(
                f"messages_table {messages_table!r} collides with the sessions table "
                f"{sessions_table!r} or one of its side tables ({', '.join(side.values())})"
            )

        s, m = _quote(sessions_table), _quote(messages_table)
        st, md, tk, lk = (_quote(name) for name in side.values())
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
        ]
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
            f"CREATE INDEX IF NOT EXISTS {_quote(f'idx_{messages_table}_session_id')} "
            f"ON {m} (session_id, id)",
            # Side tables.
            f"""CREATE TABLE IF NOT EXISTS {st} (
                session_id TEXT PRIMARY KEY,
                created_ms INTEGER NOT NULL,
                updated_ms INTEGER NOT NULL,
                expires_ms INTEGER,
                item_count INTEGER NOT NULL DEFAULT 0
            )""",
            f"CREATE INDEX IF NOT EXISTS {_quote(f'{prefix}_state_updated')} "
            f"ON {st} (updated_ms, session_id)",
            f"CREATE INDEX IF NOT EXISTS {_quote(f'{prefix}_state_expires')} "
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
            f"""CREATE TRIGGER IF NOT EXISTS {_quote(f"{prefix}_on_session_insert")}
            AFTER INSERT ON {s} BEGIN
                INSERT OR IGNORE INTO {st} (session_id, created_ms, updated_ms)
                VALUES (NEW.session_id, {NOW_MS_SQL}, {NOW_MS_SQL});
            END""",
            f"""CREATE TRIGGER IF NOT EXISTS {_quote(f"{prefix}_on_session_update")}
            AFTER UPDATE OF updated_at ON {s} BEGIN
                UPDATE {st} SET updated_ms = MAX(updated_ms, {NOW_MS_SQL})
                WHERE session_id = NEW.session_id;
            END""",
            f"""CREATE TRIGGER IF NOT EXISTS {_quote(f"{prefix}_on_session_delete")}
            AFTER DELETE ON {s} BEGIN
                DELETE FROM {st} WHERE session_id = OLD.session_id;
                DELETE FROM {md} WHERE session_id = OLD.session_id;
            END""",
            f"""CREATE TRIGGER IF NOT EXISTS {_quote(f"{prefix}_on_message_insert")}
            AFTER INSERT ON {m} BEGIN
                UPDATE {st} SET item_count = item_count + 1 WHERE session_id = NEW.session_id;
            END""",
            f"""CREATE TRIGGER IF NOT EXISTS {_quote(f"{prefix}_on_message_delete")}
            AFTER DELETE ON {m} BEGIN
                UPDATE {st} SET item_count = item_count - 1 WHERE session_id = OLD.session_id;
            END""",
        ]
        # Sessions the SDK wrote before the triggers existed; counts recomputed in case the
        # triggers were missing while messages changed.
        self._backfill = [
            f"""INSERT OR IGNORE INTO {st} (session_id, created_ms, updated_ms)
            SELECT session_id,
                   COALESCE({_ms_of("created_at")}, {NOW_MS_SQL}),
                   COALESCE({_ms_of("updated_at")}, {_ms_of("created_at")}, {NOW_MS_SQL})
            FROM {s} WHERE true""",
            f"""UPDATE {st} SET item_count =
                (SELECT COUNT(*) FROM {m} WHERE {m}.session_id = {st}.session_id)""",
        ]

        # Stand-ins for a read-only connection to a file without the side tables (one the
        # SDK wrote): temporary, so the file is untouched; they shadow the missing names.
        self._side_tables = dict(side)
        self._stand_in_state = f"""CREATE TEMP VIEW {st} AS
            SELECT session_id,
                   COALESCE({_ms_of("created_at")}, 0) AS created_ms,
                   COALESCE({_ms_of("updated_at")}, {_ms_of("created_at")}, 0) AS updated_ms,
                   NULL AS expires_ms,
                   (SELECT COUNT(*) FROM main.{m} WHERE main.{m}.session_id = {s}.session_id)
                       AS item_count
            FROM main.{s}
            UNION ALL
            SELECT session_id, COALESCE(MIN({_ms_of("created_at")}), 0),
                   COALESCE(MAX({_ms_of("created_at")}), 0), NULL, COUNT(*)
            FROM main.{m}
            WHERE session_id NOT IN (SELECT session_id FROM main.{s}) GROUP BY session_id"""
        self._stand_in_tables = {
            "metadata": f"CREATE TEMP TABLE {md} (session_id TEXT, key TEXT, value TEXT)",
            "tokens": f"CREATE TEMP TABLE {tk} (session_id TEXT, token TEXT, expires_ms INTEGER)",
            "locks": f"CREATE TEMP TABLE {lk} (session_id TEXT, token TEXT, expires_ms INTEGER)",
        }

        self._state = (
            f"SELECT created_ms, updated_ms, expires_ms, item_count FROM {st} WHERE session_id = ?"
        )
        self._upsert_session = (
            f"INSERT INTO {s} (session_id, created_at, updated_at) "
            "VALUES (?1, datetime(?2, 'unixepoch'), datetime(?2, 'unixepoch')) "
            "ON CONFLICT (session_id) DO UPDATE SET updated_at = excluded.updated_at"
        )
        # After the session-row upsert, whose triggers stamp SQLite's clock a moment later
        # than `now`: our writes carry exactly `now` (taken under the write lock).
        self._stamp = (
            f"UPDATE {st} SET created_ms = MIN(created_ms, ?2), updated_ms = ?2, "
            "expires_ms = ?3 WHERE session_id = ?1"
        )
        self._set_expiry = f"UPDATE {st} SET expires_ms = ?2 WHERE session_id = ?1"
        self._set_sdk_times = (
            f"UPDATE {s} SET created_at = datetime(?2, 'unixepoch'), "
            "updated_at = datetime(?3, 'unixepoch') WHERE session_id = ?1"
        )
        self._set_times = f"UPDATE {st} SET created_ms = ?2, updated_ms = ?3 WHERE session_id = ?1"
        # Batch tokens outlive a clear or an expiry, until their own deadline: a batch resent
        # afterwards is still recognized (an idempotency key for 24 h).
        self._delete_rows = [
            f"DELETE FROM {table} WHERE session_id = ?" for table in (st, md, m, s)
        ]
        self._token_seen = (
            f"SELECT 1 FROM {tk} WHERE session_id = ? AND token = ? AND expires_ms > ?"
        )
        self._prune_tokens = f"DELETE FROM {tk} WHERE session_id = ? AND expires_ms <= ?"
        self._add_token = (
            f"INSERT INTO {tk} (session_id, token, expires_ms) VALUES (?, ?, ?) "
            "ON CONFLICT (session_id, token) DO UPDATE SET expires_ms = excluded.expires_ms"
        )
        self.insert_message = f"INSERT INTO {m} (session_id, message_data) VALUES (?, ?)"
        self.trim = (
            f"DELETE FROM {m} WHERE session_id = ?1 AND id <= "
            f"(SELECT id FROM {m} WHERE session_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)"
        )
        self.select_all = f"SELECT message_data FROM {m} WHERE session_id = ? ORDER BY id"
        self.select_tail = (
            f"SELECT message_data FROM {m} WHERE session_id = ? ORDER BY id DESC LIMIT ?"
        )
        self.select_newest_first = (
            f"SELECT id, message_data FROM {m} WHERE session_id = ? ORDER BY id DESC"
        )
        self.delete_message = f"DELETE FROM {m} WHERE id = ?"
        self.delete_messages = f"DELETE FROM {m} WHERE session_id = ?"
        self.select_metadata = f"SELECT key, value FROM {md} WHERE session_id = ?"
        self.set_metadata = (
            f"INSERT INTO {md} (session_id, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value"
        )
        self.delete_metadata_key = f"DELETE FROM {md} WHERE session_id = ? AND key = ?"
        self.delete_metadata = f"DELETE FROM {md} WHERE session_id = ?"

        # Store-wide statements.
        self.live = "(expires_ms IS NULL OR expires_ms > :now)"
        self.state_table = st
        self.metadata_table = md
        self.count_live = f"SELECT COUNT(*) FROM {st} WHERE {self.live}"
        self.select_expired = (
            f"SELECT session_id FROM {st} WHERE expires_ms IS NOT NULL AND expires_ms <= ?"
        )
        self.prune_all_tokens = f"DELETE FROM {tk} WHERE expires_ms <= ?"
        self.prune_all_locks = f"DELETE FROM {lk} WHERE expires_ms <= ?"

        # The session lock: one row per held lock; a lapsed lease is free for the taking.
        self._lock_take = (
            f"INSERT INTO {lk} (session_id, token, expires_ms) VALUES (?1, ?2, ?3 + ?4) "
            "ON CONFLICT (session_id) DO UPDATE "
            "SET token = excluded.token, expires_ms = excluded.expires_ms "
            f"WHERE {lk}.expires_ms <= ?3 OR {lk}.token = ?2"
        )
        self._lock_renew = (
            f"UPDATE {lk} SET expires_ms = ?3 + ?4 "
            "WHERE session_id = ?1 AND token = ?2 AND expires_ms > ?3"
        )
        self._lock_held = (
            f"SELECT 1 FROM {lk} WHERE session_id = ?1 AND token = ?2 AND expires_ms > ?3"
        )
        self._lock_drop = f"DELETE FROM {lk} WHERE session_id = ? AND token = ?"

    def __repr__(self) -> str:
        return f"Schema({self.sessions_table!r}, {self.messages_table!r})"

    # -- installation ----------------------------------------------------------------------

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

    # -- one session's rows (run inside a transaction) -------------------------------------

    def live_state(self, conn: sqlite3.Connection, session_id: str, now: int) -> StateRow | None:
        """The session's state, or None when it does not exist or has expired."""
        row = conn.execute(self._state, (session_id,)).fetchone()
        if row is None or (row[2] is not None and row[2] <= now):
            return None
        return StateRow(*row)

    def prepare_write(self, conn: sqlite3.Connection, session_id: str, now: int) -> StateRow | None:
        """`live_state`, after deleting an expired session's rows: a write starts afresh."""
        row = conn.execute(self._state, (session_id,)).fetchone()
        if row is None:
            return None
        if row[2] is not None and row[2] <= now:
            self.delete_session_rows(conn, session_id)
            return None
        return StateRow(*row)

    def delete_session_rows(self, conn: sqlite3.Connection, session_id: str) -> None:
        """Delete every row of the session, side tables first (the triggers then find none)."""
        for statement in self._delete_rows:
            conn.execute(statement, (session_id,))

    def mark_written(
        self, conn: sqlite3.Connection, session_id: str, now: int, ttl_ms: int | None
    ) -> None:
        """Create the session if needed and record a write: update time and TTL deadline.

        Also moves the SDK's `updated_at`, so the SDK sees our writes as it sees its own.
        """
        conn.execute(self._upsert_session, (session_id, now // 1000))
        expires = None if ttl_ms is None else now + ttl_ms
        conn.execute(self._stamp, (session_id, now, expires))

    def set_times(
        self, conn: sqlite3.Connection, session_id: str, created_ms: int, updated_ms: int
    ) -> None:
        """Give a copied session its own creation and update times (the SDK's columns too)."""
        conn.execute(self._set_sdk_times, (session_id, created_ms // 1000, updated_ms // 1000))
        # After the SDK's columns: their update trigger would stamp the current time.
        conn.execute(self._set_times, (session_id, created_ms, updated_ms))

    def set_expiry(self, conn: sqlite3.Connection, session_id: str, expires_ms: int | None) -> None:
        conn.execute(self._set_expiry, (session_id, expires_ms))

    def token_seen(self, conn: sqlite3.Connection, session_id: str, token: str, now: int) -> bool:
        return conn.execute(self._token_seen, (session_id, token, now)).fetchone() is not None

    def record_token(
        self, conn: sqlite3.Connection, session_id: str, token: str, now: int, expires_ms: int
    ) -> None:
        """Remember `token` until `expires_ms`, pruning the session's expired tokens."""
        conn.execute(self._prune_tokens, (session_id, now))
        conn.execute(self._add_token, (session_id, token, expires_ms))

    def insert_messages(
        self, conn: sqlite3.Connection, session_id: str, raws: Iterable[bytes]
    ) -> None:
        # Stored as TEXT: the SDK's json.loads reads it, and `typeof()` says what it is.
        conn.executemany(self.insert_message, ((session_id, raw.decode()) for raw in raws))

    def metadata(self, conn: sqlite3.Connection, session_id: str) -> dict[str, str]:
        return dict(conn.execute(self.select_metadata, (session_id,)).fetchall())

    def replace_metadata(
        self, conn: sqlite3.Connection, session_id: str, metadata: Mapping[str, str]
    ) -> None:
        conn.execute(self.delete_metadata, (session_id,))
        conn.executemany(
            self.set_metadata, ((session_id, key, value) for key, value in metadata.items())
        )

    def info(self, conn: sqlite3.Connection, session_id: str, now: int) -> SessionInfo | None:
        """The session's `SessionInfo`, or None when it does not exist or has expired."""
        state = self.live_state(conn, session_id, now)
        if state is None:
            return None
        return self.session_info(session_id, state, self.metadata(conn, session_id))

    # -- the session lock (run inside a write transaction) ----------------------------------

    def lock_acquire(
        self, conn: sqlite3.Connection, session_id: str, token: str, now: int, lease_ms: int
    ) -> bool:
        """Take the lock for `token` unless another token holds a live lease."""
        return conn.execute(self._lock_take, (session_id, token, now, lease_ms)).rowcount == 1

    def lock_renew(
        self, conn: sqlite3.Connection, session_id: str, token: str, now: int, lease_ms: int
    ) -> bool:
        """Extend the lease if `token` holds it and it has not lapsed."""
        return conn.execute(self._lock_renew, (session_id, token, now, lease_ms)).rowcount == 1

    def lock_release(self, conn: sqlite3.Connection, session_id: str, token: str, now: int) -> bool:
        """Drop `token`'s lock row; True if its lease was still live."""
        held = conn.execute(self._lock_held, (session_id, token, now)).fetchone() is not None
        conn.execute(self._lock_drop, (session_id, token))
        return held

    @staticmethod
    def session_info(session_id: str, state: StateRow, metadata: dict[str, str]) -> SessionInfo:
        return SessionInfo(
            session_id=session_id,
            created_at=datetime_from_ms(state.created_ms),
            updated_at=datetime_from_ms(state.updated_ms),
            item_count=state.item_count,
            expires_at=None if state.expires_ms is None else datetime_from_ms(state.expires_ms),
            metadata=metadata,
        )
