"""The SQLite layout, and every statement a session or store runs behind methods.

The statements are SQL files (statements/session.sql and statements/store.sql), read once
and rendered here with the table names once per table pair. Callers (session.py,
store.py) call methods only; no SQL is written in them or here. The DDL (tables, triggers,
install, backfill, read-only stand-ins) is apart, in ddl.py.

The SDK's two tables are used as the SDK defines them, so a file either side wrote reads back
on the other. Everything else lives in side tables named after the sessions table:

```
agent_sessions            SDK: session_id PK, created_at, updated_at (UTC text, seconds)
agent_messages            SDK: id AUTOINCREMENT, session_id, message_data (JSON text), created_at
agent_sessions_state      one row per session: created_ms, updated_ms, expires_ms, item_count
agent_sessions_metadata   (session_id, key) -> value
agent_sessions_tokens     (session_id, token) -> expires_ms: batch tokens and idempotency keys
agent_sessions_locks      session_id -> holder token, lease deadline (ms): `session.lock()`
agent_sessions_index      (key, value, updated_ms, session_id): the metadata index
agent_sessions_indexed    key -> resume_after: the indexed keys (NULL: complete)
agent_sessions_counters   'sessions' -> the number of state rows
```

Triggers on the SDK's tables keep the state table exact whoever writes, the SDK's own
`SQLiteSession` included: a new session row creates its state row, a changed `updated_at`
moves `updated_ms`, every inserted or deleted message moves `item_count`, and a deleted
session row takes its state and metadata with it (not its lock, which a holder may keep
across a clear, nor its batch tokens, which must outlive a clear until their own deadline).
Sessions that existed before the triggers did are backfilled from `created_at` and
`updated_at` when the schema is installed (ddl.py). So counting, listing and inspecting a
session read one indexed row, never the messages.

The metadata index and the session counter are kept by triggers too, in the transaction of
the write that moves them: listing one indexed key=value pair reads the page's rows of the
index, and counting reads the counter minus the sessions past their deadline (found by the
deadline index; writes delete a few of them as they go, so those stay few).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from ..info import SessionInfo, datetime_from_ms
from .ddl import SIDE_TABLES, Installer, quote
from .statements import FRAGMENTS, STATEMENTS, fill, render

__all__ = ["SWEEP_PER_WRITE", "Schema", "StateRow", "validate_table_name"]

# Bound parameters per statement when fetching a page's metadata (SQLite allows 32766).
_IN_CHUNK = 500

#: Expired sessions a write deletes on its way (bounded work per write, in its transaction).
SWEEP_PER_WRITE = 2

# A position in the listing order: (updated ms, session id).
Position = tuple[int, str]

_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def validate_table_name(name: object, what: str = "table name") -> str:
    """Return `name` if it is a plain SQL identifier that SQLite does not reserve."""
    if not isinstance(name, str) or not _TABLE_NAME.match(name):
        raise ConfigurationError(f"{what} must match [A-Za-z_][A-Za-z0-9_]{{0,62}}, not {name!r}")
    if name.lower().startswith("sqlite_"):
        raise ConfigurationError(f"{what} {name!r} is reserved by SQLite (sqlite_ prefix)")
    return name


@dataclass(frozen=True)
class StateRow:
    """A live session's state row."""

    created_ms: int
    updated_ms: int
    expires_ms: int | None
    item_count: int


@dataclass(frozen=True)
class _Walk:
    """One way a listing walks the sessions newest first: its fragments of store.sql."""

    source: str  # FROM ... WHERE: the live sessions it walks
    after: str  # the condition "older than the cursor's position"
    updated_before: str
    order: str  # ORDER BY ... LIMIT :limit

    @classmethod
    def of(cls, fragments: Mapping[str, str], source: str, table: str) -> _Walk:
        """The walk `source` (a fragment), whose order is that of `table` (quoted)."""
        return cls(
            source=fragments[source],
            after=fill(fragments["after"], walk=table),
            updated_before=fill(fragments["updated_before"], walk=table),
            order=fill(fragments["newest_first"], walk=table),
        )


class Schema:
    """Table names (validated, quoted) and the statements of one sessions/messages pair."""

    def __init__(
        self,
        sessions_table: str = "agent_sessions",
        messages_table: str = "agent_messages",
        index_metadata: tuple[str, ...] = (),
    ) -> None:
        self.sessions_table = validate_table_name(sessions_table, "sessions_table")
        self.messages_table = validate_table_name(messages_table, "messages_table")
        #: Keys a read-write connection registers in the file's metadata index when it opens.
        self.index_metadata = index_metadata
        side = {kind: f"{sessions_table}_{kind}" for kind in SIDE_TABLES}
        names = [sessions_table, messages_table, *side.values()]
        if len({name.lower() for name in names}) != len(names):
            raise ConfigurationError(
                f"messages_table {messages_table!r} collides with the sessions table "
                f"{sessions_table!r} or one of its side tables ({', '.join(side.values())})"
            )

        self._installer = Installer(sessions_table, messages_table, side)
        # The statements of statements/*.sql with this pair's table names, rendered once.
        tables = {"sessions": quote(sessions_table), "messages": quote(messages_table)}
        tables.update((kind, quote(name)) for kind, name in side.items())
        self._sql = render(STATEMENTS, tables)
        self._fragments = render(FRAGMENTS, tables)
        self._by_update = _Walk.of(self._fragments, "walk_by_update", tables["state"])
        self._by_index = _Walk.of(self._fragments, "walk_by_index", tables["index"])
        # A session's rows, side tables first (the triggers then find none).
        self._delete_rows = [
            self._sql[name]
            for name in ("delete_state", "delete_metadata", "delete_messages", "delete_session")
        ]

    def __repr__(self) -> str:
        return f"Schema({self.sessions_table!r}, {self.messages_table!r})"

    # -- installation (ddl.py) -------------------------------------------------------------

    def install(self, conn: sqlite3.Connection) -> None:
        """Create whatever is missing (see `Installer.install`) and register the index keys."""
        self._installer.install(conn)
        self._installer.register(conn, self.index_metadata)

    def stand_in(self, conn: sqlite3.Connection, path: str) -> None:
        """Stand-ins for missing side tables on a read-only connection (`Installer.stand_in`)."""
        self._installer.stand_in(conn, path)

    # -- one session's rows (run inside a transaction) -------------------------------------

    def live_state(self, conn: sqlite3.Connection, session_id: str, now: int) -> StateRow | None:
        """The session's state, or None when it does not exist or has expired."""
        row = conn.execute(self._sql["state"], (session_id,)).fetchone()
        if row is None or (row[2] is not None and row[2] <= now):
            return None
        return StateRow(*row)

    def prepare_write(self, conn: sqlite3.Connection, session_id: str, now: int) -> StateRow | None:
        """`live_state`, after deleting an expired session's rows: a write starts afresh.

        Also deletes a few other expired sessions (`sweep`).
        """
        self.sweep(conn, now)
        row = conn.execute(self._sql["state"], (session_id,)).fetchone()
        if row is None:
            return None
        if row[2] is not None and row[2] <= now:
            self.delete_session_rows(conn, session_id)
            return None
        return StateRow(*row)

    def sweep(self, conn: sqlite3.Connection, now: int) -> int:
        """Delete up to `SWEEP_PER_WRITE` expired sessions (oldest deadline first).

        Every write calls it in its transaction, so expired sessions do not pile up without
        `purge_expired()`: the work per write is bounded, and one probe of the deadline
        index when nothing has expired.
        """
        expired = [
            sid for (sid,) in conn.execute(self._sql["select_some_expired"], (now, SWEEP_PER_WRITE))
        ]
        for sid in expired:
            self.delete_session_rows(conn, sid)
        return len(expired)

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
        conn.execute(self._sql["upsert_session"], (session_id, now // 1000))
        expires = None if ttl_ms is None else now + ttl_ms
        conn.execute(self._sql["stamp"], (session_id, now, expires))

    def set_times(
        self, conn: sqlite3.Connection, session_id: str, created_ms: int, updated_ms: int
    ) -> None:
        """Give a copied session its own creation and update times (the SDK's columns too)."""
        conn.execute(
            self._sql["set_sdk_times"], (session_id, created_ms // 1000, updated_ms // 1000)
        )
        # After the SDK's columns: their update trigger would stamp the current time.
        conn.execute(self._sql["set_times"], (session_id, created_ms, updated_ms))

    def set_expiry(self, conn: sqlite3.Connection, session_id: str, expires_ms: int | None) -> None:
        conn.execute(self._sql["set_expiry"], (session_id, expires_ms))

    def token_seen(self, conn: sqlite3.Connection, session_id: str, token: str, now: int) -> bool:
        return (
            conn.execute(self._sql["token_seen"], (session_id, token, now)).fetchone() is not None
        )

    def record_token(
        self, conn: sqlite3.Connection, session_id: str, token: str, now: int, expires_ms: int
    ) -> None:
        """Remember `token` until `expires_ms`, pruning the session's expired tokens."""
        conn.execute(self._sql["prune_tokens"], (session_id, now))
        conn.execute(self._sql["add_token"], (session_id, token, expires_ms))

    def insert_messages(
        self, conn: sqlite3.Connection, session_id: str, raws: Iterable[bytes]
    ) -> None:
        # Stored as TEXT: the SDK's json.loads reads it, and `typeof()` says what it is.
        conn.executemany(self._sql["insert_message"], ((session_id, raw.decode()) for raw in raws))

    def read_items(
        self, conn: sqlite3.Connection, session_id: str, count: int | None = None
    ) -> list[str]:
        """The stored items, oldest first: all, or the newest `count`."""
        if count is None:
            return [raw for (raw,) in conn.execute(self._sql["select_all"], (session_id,))]
        raws = [raw for (raw,) in conn.execute(self._sql["select_tail"], (session_id, count))]
        raws.reverse()
        return raws

    def newest_first(self, conn: sqlite3.Connection, session_id: str) -> sqlite3.Cursor:
        """A cursor over (row id, stored item), newest first (close it when done)."""
        return conn.execute(self._sql["select_newest_first"], (session_id,))

    def delete_message(self, conn: sqlite3.Connection, row_id: int) -> None:
        conn.execute(self._sql["delete_message"], (row_id,))

    def delete_messages(self, conn: sqlite3.Connection, session_id: str) -> None:
        conn.execute(self._sql["delete_messages"], (session_id,))

    def trim(self, conn: sqlite3.Connection, session_id: str, max_items: int) -> None:
        """Delete all but the newest `max_items` items."""
        conn.execute(self._sql["trim"], (session_id, max_items))

    def update_metadata(
        self,
        conn: sqlite3.Connection,
        session_id: str,
        pairs: Mapping[str, str],
        remove: Iterable[str],
    ) -> None:
        """Set `pairs` and remove the keys in `remove`."""
        conn.executemany(self._sql["set_metadata"], ((session_id, k, v) for k, v in pairs.items()))
        conn.executemany(self._sql["delete_metadata_key"], ((session_id, key) for key in remove))

    def metadata(self, conn: sqlite3.Connection, session_id: str) -> dict[str, str]:
        return dict(conn.execute(self._sql["select_metadata"], (session_id,)).fetchall())

    def replace_metadata(
        self, conn: sqlite3.Connection, session_id: str, metadata: Mapping[str, str]
    ) -> None:
        conn.execute(self._sql["delete_metadata"], (session_id,))
        conn.executemany(
            self._sql["set_metadata"], ((session_id, key, value) for key, value in metadata.items())
        )

    # -- store-wide (run inside a transaction, but `ping`) -----------------------------------

    def ping(self, conn: sqlite3.Connection) -> bool:
        """True when the database answers a trivial query."""
        return bool(conn.execute(self._sql["ping"]).fetchone() == (1,))

    def count_live(self, conn: sqlite3.Connection, now: int) -> int:
        return int(conn.execute(self._sql["count_live"], {"now": now}).fetchone()[0])

    def expired_ids(self, conn: sqlite3.Connection, now: int, limit: int) -> list[str]:
        """Up to `limit` sessions past their deadline, the longest expired first."""
        return [sid for (sid,) in conn.execute(self._sql["select_expired"], (now, limit))]

    def count_expired(self, conn: sqlite3.Connection, now: int) -> int:
        return int(conn.execute(self._sql["count_expired"], (now,)).fetchone()[0])

    def prune_lapsed(self, conn: sqlite3.Connection, now: int) -> None:
        """Delete every lapsed batch token and lock lease."""
        conn.execute(self._sql["prune_all_tokens"], (now,))
        conn.execute(self._sql["prune_all_locks"], (now,))

    def index_state(self, conn: sqlite3.Connection) -> dict[str, str | None]:
        """The file's indexed keys: key -> None when complete, else where `reindex` resumes."""
        return dict(conn.execute(self._sql["registered"]).fetchall())

    def _matching(
        self,
        conn: sqlite3.Connection,
        now: int,
        metadata: Mapping[str, str],
        after: Position | None,
        updated_before_ms: int | None,
    ) -> tuple[str, str, dict[str, Any]]:
        """FROM ... WHERE and parameters selecting the live sessions with every pair of
        `metadata`, older than the position `after` and updated before `updated_before_ms`;
        and the ORDER BY ... LIMIT :limit of newest first. Composed of store.sql's fragments.

        A pair of a completely indexed key walks that key's index rows for its value, newest
        first (rows of the page, plus those the other pairs reject); else the state rows are
        walked in update order, which `updated_before_ms` bounds.
        """
        complete = {key for key, resume in self.index_state(conn).items() if resume is None}
        indexed = next(((k, v) for k, v in metadata.items() if k in complete), None)
        params: dict[str, Any] = {"now": now}
        walk = self._by_update if indexed is None else self._by_index
        parts = [walk.source]
        if indexed is not None:
            params["ikey"], params["ivalue"] = indexed
        if after is not None:
            parts.append(walk.after)
            params["after_ms"], params["after_id"] = after
        if updated_before_ms is not None:
            parts.append(walk.updated_before)
            params["before_ms"] = updated_before_ms
        for index, (key, value) in enumerate(metadata.items()):
            if (key, value) == indexed:
                continue
            parts.append(fill(self._fragments["has_pair"], n=str(index)))
            params[f"key{index}"], params[f"value{index}"] = key, value
        return "\n".join(parts), walk.order, params

    def list_page(
        self,
        conn: sqlite3.Connection,
        now: int,
        limit: int,
        after: Position | None,
        metadata: Mapping[str, str],
    ) -> tuple[list[SessionInfo], Position | None]:
        """Up to `limit` live sessions after `after` (updated ms, id), newest first, with
        every pair of `metadata`; and the position of the last one when more follow."""
        selection, order, params = self._matching(conn, now, metadata, after, None)
        params["limit"] = limit + 1
        query = "\n".join((self._fragments["select_page"], selection, order))
        rows = conn.execute(query, params).fetchall()
        page, more = rows[:limit], len(rows) > limit
        ids = [row[0] for row in page]
        found: dict[str, dict[str, str]] = {sid: {} for sid in ids}
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            query = fill(self._fragments["page_metadata"], marks=", ".join("?" * len(chunk)))
            for sid, key, value in conn.execute(query, chunk):
                found[sid][key] = value
        sessions = [self.session_info(row[0], StateRow(*row[1:]), found[row[0]]) for row in page]
        last = (page[-1][2], page[-1][0]) if more and page else None
        return sessions, last

    def matching_positions(
        self,
        conn: sqlite3.Connection,
        now: int,
        metadata: Mapping[str, str],
        updated_before_ms: int | None,
        after: Position | None,
        limit: int,
    ) -> list[Position]:
        """The positions of up to `limit` matching live sessions after `after`, newest first."""
        selection, order, params = self._matching(conn, now, metadata, after, updated_before_ms)
        params["limit"] = limit
        query = "\n".join((self._fragments["select_positions"], selection, order))
        return [(updated, sid) for updated, sid in conn.execute(query, params)]

    def count_matching(
        self,
        conn: sqlite3.Connection,
        now: int,
        metadata: Mapping[str, str],
        updated_before_ms: int | None,
    ) -> int:
        """How many live sessions have every pair of `metadata` and were updated before."""
        selection, _, params = self._matching(conn, now, metadata, None, updated_before_ms)
        query = "\n".join((self._fragments["select_count"], selection))
        return int(conn.execute(query, params).fetchone()[0])

    def reindex_batch(self, conn: sqlite3.Connection, now: int, size: int) -> int | None:
        """Index the next `size` sessions (by id) for every key whose index is incomplete.

        Returns how many live sessions the batch covered, or None when every key was already
        complete. Run in a write transaction: the walk's position is saved with the batch,
        so an interrupted `reindex` resumes after the last batch it committed.
        """
        pending = {
            key: resume for key, resume in self.index_state(conn).items() if resume is not None
        }
        if not pending:
            return None
        start = min(pending.values())
        rows = conn.execute(self._sql["state_batch"], (start, size)).fetchall()
        last = rows[-1][0] if rows else start
        finished = len(rows) < size
        for key, resume in pending.items():
            if resume < last:
                conn.execute(self._sql["drop_index_range"], (key, resume, last))
                conn.execute(self._sql["fill_index_range"], (key, resume, last))
            if resume < last or finished:
                conn.execute(self._sql["set_resume"], (None if finished else last, key))
        return sum(1 for _, expires in rows if expires is None or expires > now)

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
        return (
            conn.execute(self._sql["lock_take"], (session_id, token, now, lease_ms)).rowcount == 1
        )

    def lock_renew(
        self, conn: sqlite3.Connection, session_id: str, token: str, now: int, lease_ms: int
    ) -> bool:
        """Extend the lease if `token` holds it and it has not lapsed."""
        return (
            conn.execute(self._sql["lock_renew"], (session_id, token, now, lease_ms)).rowcount == 1
        )

    def lock_release(self, conn: sqlite3.Connection, session_id: str, token: str, now: int) -> bool:
        """Drop `token`'s lock row; True if its lease was still live."""
        held = conn.execute(self._sql["lock_held"], (session_id, token, now)).fetchone() is not None
        conn.execute(self._sql["lock_drop"], (session_id, token))
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
