"""`SQLiteStore`: one connection (and its worker thread) shared by every session it hands out."""

from __future__ import annotations

import os
import sqlite3
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn, TypeVar

from ..backend import RawItem, SessionCopy, SessionWrite, validate_index_metadata
from ..errors import BackendError, BackendUnavailableError, ConfigurationError
from ..info import SessionInfo, SessionPage
from ..items import DEFAULT_MAX_ITEM_BYTES
from ..options import OnCorrupt, SessionOptions, resolve_options, validate_session_id
from ..store import BaseStore, Progress, decode_cursor, deletion_filters, encode_cursor
from ..urls import mask_url
from .connection import (
    BUSY_TIMEOUT_S,
    ConnectionWorker,
    as_db_path,
    is_memory_path,
    now_ms,
    parse_sqlite_url,
    transaction,
)
from .schema import Position, Schema
from .session import TABLE_OPTIONS, SQLiteSession, replace_rows

__all__ = ["SQLiteStore", "open_sqlite_store"]

T = TypeVar("T")

#: Sessions one transaction of `reindex`, `delete_sessions` or `purge_expired` goes through:
#: each commits on its own, so other writers wait for one batch at most and an interruption
#: loses none.
BATCH = 500

#: Sessions read or written per transaction by `snapshot_sessions` and `replace_sessions`.
TRANSFER_BATCH = 256


class SQLiteStore(BaseStore):
    """Sessions in one SQLite database, sharing one connection and the store's defaults.

    `db_path=":memory:"` is one in-memory database for every session of this store. Closing
    the store closes the connection; sessions it handed out stop working then.

    `index_metadata` keys are registered in the file's metadata index when the store first
    opens the file for writing; triggers keep that index exact whoever writes afterwards.
    A key registered while the file already holds sessions is indexed by `reindex()`.
    A keyword that is no option raises `ConfigurationError` naming it.
    """

    kind = "SQLiteStore"

    #: The class `session()` hands out (a subclass's `__init__` runs for each).
    session_class: type[SQLiteSession] = SQLiteSession

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        index_metadata: Sequence[str] = (),
        ttl: float | None = None,
        refresh_ttl_on_read: bool = True,
        max_turns: int | None = None,
        max_items: int | None = None,
        session_settings: Any = None,
        on_corrupt: OnCorrupt = "skip",
        max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES,
        sessions_table: str = "agent_sessions",
        messages_table: str = "agent_messages",
        read_only: bool = False,
        busy_timeout: float = BUSY_TIMEOUT_S,
        **unknown: NoReturn,
    ) -> None:
        self._options, _ = resolve_options(
            [
                {
                    "ttl": ttl,
                    "refresh_ttl_on_read": refresh_ttl_on_read,
                    "max_turns": max_turns,
                    "max_items": max_items,
                    "session_settings": session_settings,
                    "on_corrupt": on_corrupt,
                    "max_item_bytes": max_item_bytes,
                },
                unknown,
            ],
            context=f"{type(self).__name__}(...)",
        )
        self.index_metadata = validate_index_metadata(index_metadata)
        super().__init__()
        self.read_only = bool(read_only)
        #: Sessions per transaction of `reindex`, `delete_sessions` and `purge_expired`.
        self.batch = BATCH
        if self.read_only:
            # Sliding an expiry on read is a write: a read-only store never does it.
            self._options = self._options.replace(refresh_ttl_on_read=False)
        self.db_path = as_db_path(db_path)
        self._schema = Schema(sessions_table, messages_table, self.index_metadata)
        # A private worker, not the process-wide one of standalone sessions: closing the
        # store must stop its sessions whoever else has the file open.
        path = self.db_path if is_memory_path(self.db_path) else os.path.abspath(self.db_path)
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, (int, float)):
            raise ConfigurationError(
                f"busy_timeout must be a number of seconds, not {busy_timeout!r}"
            )
        if not 0 <= busy_timeout < float("inf"):
            raise ConfigurationError(f"busy_timeout must be >= 0 seconds, not {busy_timeout!r}")
        self._worker = ConnectionWorker(
            path, self._schema, read_only=self.read_only, busy_timeout=float(busy_timeout)
        )
        self._finalizer = weakref.finalize(self, self._worker.release)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.db_path!r}, "
            f"sessions_table={self._schema.sessions_table!r}, "
            f"messages_table={self._schema.messages_table!r}, "
            f"index_metadata={self.index_metadata!r})"
        )

    @property
    def options(self) -> SessionOptions:
        """The defaults every session of this store starts from."""
        return self._options

    @property
    def sessions_table(self) -> str:
        return self._schema.sessions_table

    @property
    def messages_table(self) -> str:
        return self._schema.messages_table

    async def _run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        self._check_open()
        return await self._worker.run(job, self.kind)

    def session(self, session_id: str, **overrides: Any) -> SQLiteSession:
        """A session on this store's connection with its defaults (`overrides` win); no I/O.

        Closing it leaves the store open. An unknown option raises `ConfigurationError`.
        """
        self._check_open()
        options, _ = resolve_options(
            [overrides], base=self._options, context=f"{type(self).__name__}.session(...)"
        )
        if self.read_only and options.refresh_ttl_on_read:
            options = options.replace(refresh_ttl_on_read=False)
        return self.session_class(
            session_id,
            self.db_path,
            connection=self._worker,
            owns_connection=False,
            store=self,
            **options.keywords(),
        )

    async def get_info(self, session_id: str) -> SessionInfo | None:
        """The session's `SessionInfo`, or None when it does not exist (or has expired)."""
        validate_session_id(session_id)
        schema = self._schema

        def job(conn: sqlite3.Connection) -> SessionInfo | None:
            with transaction(conn, write=False):
                return schema.info(conn, session_id, now_ms())

        return await self._run(job)

    async def list_sessions(
        self,
        *,
        limit: int = 100,
        cursor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> SessionPage:
        """One page of live sessions, most recently updated first (ties: id descending).

        `metadata` keeps sessions having every given pair. Paging is by keyset, so a session
        not written while paging is listed exactly once. `next_cursor` is None on the last page.
        A pair of an indexed key reads the page's rows of the metadata index; other filters
        walk the sessions newest first until the page is full (a scan, bounded by the store).
        """
        wanted = self._check_page_args(limit, metadata)
        after = decode_cursor(cursor) if cursor is not None else None
        schema = self._schema

        def job(conn: sqlite3.Connection) -> SessionPage:
            with transaction(conn, write=False):
                sessions, last = schema.list_page(conn, now_ms(), limit, after, wanted)
            next_cursor = encode_cursor(*last) if last is not None else None
            return SessionPage(sessions=sessions, next_cursor=next_cursor)

        return await self._run(job)

    async def count_sessions(self) -> int:
        """The number of live sessions: a counter, minus the sessions past their deadline."""
        schema = self._schema

        def job(conn: sqlite3.Connection) -> int:
            return schema.count_live(conn, now_ms())

        return await self._run(job)

    async def delete_session(self, session_id: str) -> bool:
        """Delete the session's rows; True if it existed (and had not expired)."""
        validate_session_id(session_id)
        schema = self._schema

        def job(conn: sqlite3.Connection) -> bool:
            with transaction(conn, write=True):
                now = now_ms()
                existed = schema.live_state(conn, session_id, now) is not None
                schema.delete_session_rows(conn, session_id)
                schema.sweep(conn, now)
                return existed

        return await self._run(job)

    async def delete_sessions(
        self,
        *,
        metadata: Mapping[str, str] | None = None,
        updated_before: datetime | None = None,
        dry_run: bool = False,
    ) -> int:
        """Delete every live session matching all the given conditions; returns how many.

        As `BaseStore.delete_sessions`. A pair of an indexed key walks its index, and
        `updated_before` the update order, so the work follows the matches, not the store.
        Each session is deleted whole in one transaction (`self.batch` sessions each).
        """
        wanted = deletion_filters(metadata, updated_before)
        before_ms = None if updated_before is None else _ms(updated_before)
        schema, size = self._schema, self.batch

        if dry_run:

            def count(conn: sqlite3.Connection) -> int:
                with transaction(conn, write=False):
                    return schema.count_matching(conn, now_ms(), wanted, before_ms)

            return await self._run(count)

        def delete_batch(
            after: Position | None,
        ) -> Callable[[sqlite3.Connection], tuple[int, Position | None]]:
            def job(conn: sqlite3.Connection) -> tuple[int, Position | None]:
                with transaction(conn, write=True):
                    now = now_ms()
                    found = schema.matching_positions(conn, now, wanted, before_ms, after, size)
                    for _, session_id in found:
                        schema.delete_session_rows(conn, session_id)
                    return len(found), (found[-1] if len(found) == size else None)

            return job

        deleted, position = 0, None
        while True:
            done, position = await self._run(delete_batch(position))
            deleted += done
            if position is None:
                return deleted

    async def reindex(self, *, progress: Progress | None = None) -> int:
        """Build the index of every key registered in the file whose index is incomplete.

        Walks the sessions by id, `self.batch` per transaction, saving its position with each
        batch: an interrupted call (a crash, or `progress` raising) loses nothing, and the
        next call continues from there. Sessions written meanwhile are indexed by their own
        writes. `progress(done)` is called after each batch with the sessions indexed so
        far. Returns how many live sessions it indexed: 0 when every index was complete.
        A read-only store raises `BackendError` (it cannot write the index).
        """
        self._check_open()
        if self.read_only:
            raise BackendError(
                f"SQLite database {self.db_path} is open read-only: reindex writes the index"
            )
        schema, size = self._schema, self.batch

        def job(conn: sqlite3.Connection) -> int | None:
            with transaction(conn, write=True):
                return schema.reindex_batch(conn, now_ms(), size)

        indexed = 0
        while True:
            done = await self._run(job)
            if done is None:
                return indexed
            indexed += done
            if progress is not None:
                progress(indexed)

    async def count_expired(self) -> int:
        """How many sessions `purge_expired` would remove now (nothing is changed)."""
        schema = self._schema

        def job(conn: sqlite3.Connection) -> int:
            with transaction(conn, write=False):
                return schema.count_expired(conn, now_ms())

        return await self._run(job)

    async def purge_expired(self) -> int:
        """Delete the rows of every expired session (and lapsed batch tokens and locks).

        Works in transactions of `self.batch` sessions, each committing on its own, so other
        writers wait for one batch at most. Returns how many sessions it removed.
        """
        schema, size = self._schema, self.batch

        def job(conn: sqlite3.Connection) -> tuple[int, bool]:
            with transaction(conn, write=True):
                now = now_ms()
                expired = schema.expired_ids(conn, now, size)
                for sid in expired:
                    schema.delete_session_rows(conn, sid)
                more = len(expired) == size
                if not more:
                    schema.prune_lapsed(conn, now)
                return len(expired), more

        removed, more = 0, True
        while more:
            done, more = await self._run(job)
            removed += done
        return removed

    async def snapshot_sessions(self, session_ids: Sequence[str]) -> list[SessionCopy | None]:
        """For each id, its `SessionCopy` or None, all read in one read transaction (a
        consistent view of the whole batch) on the worker thread, `TRANSFER_BATCH` at a time.
        The TTL is not refreshed."""
        ids = [validate_session_id(session_id) for session_id in session_ids]
        schema = self._schema

        def job(batch: list[str]) -> Callable[[sqlite3.Connection], list[SessionCopy | None]]:
            def read(conn: sqlite3.Connection) -> list[SessionCopy | None]:
                copies: list[SessionCopy | None] = []
                with transaction(conn, write=False):
                    now = now_ms()
                    for sid in batch:
                        info = schema.info(conn, sid, now)
                        if info is None:
                            copies.append(None)
                            continue
                        raws: list[RawItem] = list(schema.read_items(conn, sid))
                        copies.append(SessionCopy(info=info, raws=raws))
                return copies

            return read

        copies: list[SessionCopy | None] = []
        for start in range(0, len(ids), TRANSFER_BATCH):
            copies.extend(await self._run(job(ids[start : start + TRANSFER_BATCH])))
        return copies

    async def replace_sessions(self, writes: Sequence[SessionWrite]) -> None:
        """Each write as `storage_replace` does it, `TRANSFER_BATCH` sessions per write
        transaction (so atomic per session, and per batch as well)."""
        default = self._options
        planned = [
            (
                validate_session_id(write.session_id),
                default.ttl_ms if write.ttl is None else SessionOptions(ttl=write.ttl).ttl_ms,
                write,
            )
            for write in writes
        ]
        schema, max_items = self._schema, default.max_items

        def job(
            batch: list[tuple[str, int | None, SessionWrite]],
        ) -> Callable[[sqlite3.Connection], None]:
            def write_all(conn: sqlite3.Connection) -> None:
                with transaction(conn, write=True):
                    now = now_ms()
                    for sid, ttl_ms, write in batch:
                        replace_rows(
                            conn,
                            schema,
                            sid,
                            now,
                            ttl_ms,
                            max_items,
                            write.encoded,
                            dict(write.metadata),
                            write.times,
                        )

            return write_all

        for start in range(0, len(planned), TRANSFER_BATCH):
            await self._run(job(planned[start : start + TRANSFER_BATCH]))

    async def ping(self) -> bool:
        """True when the database answers (opening it, and installing the schema, if needed);
        False when it stays locked past the busy timeout. A file it cannot use (not a
        database, a directory that does not exist) raises `BackendError`, as a Redis server
        refusing the credentials does."""

        schema = self._schema

        def job(conn: sqlite3.Connection) -> bool:
            return schema.ping(conn)

        try:
            return await self._run(job)
        except BackendUnavailableError:
            return False

    async def storage_close(self) -> None:
        self._finalizer()


def open_sqlite_store(url: str, **options: Any) -> SQLiteStore:
    """The store a `sqlite://` URL names; keyword options override query parameters.

    `sqlite:///relative.db`, `sqlite:////abs/path.db`, and `sqlite://` (or
    `sqlite:///:memory:`): one in-memory database shared by every session of the store.
    An unknown option or a malformed URL raises `ConfigurationError`.
    """
    parsed = parse_sqlite_url(url)
    session_options, tables = resolve_options(
        [parsed.session_options, parsed.table_options, parsed.store_options, options],
        extra={*TABLE_OPTIONS, "read_only", "busy_timeout", "index_metadata"},
        context=f"open_store({mask_url(url)!r}, ...)",
    )
    return SQLiteStore(parsed.path, **tables, **session_options.keywords())


def _ms(moment: datetime) -> int:
    """The first millisecond not before `moment`: `updated_ms < _ms(t)` iff `updated < t`."""
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    return -(-micros // 1000)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
