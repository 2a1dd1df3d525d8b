"""`SQLiteSession`: the SDK's tables, one transaction per operation, off the event loop."""

from __future__ import annotations

import os
import sqlite3
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn, TypeVar

from ..backend import PopResult, RawItem, Snapshot, Times
from ..info import SessionInfo
from ..items import DEFAULT_MAX_ITEM_BYTES, decode_item
from ..options import OnCorrupt, resolve_options
from ..session import BaseSession
from ..urls import mask_url
from .connection import (
    ConnectionWorker,
    as_db_path,
    is_memory_path,
    now_ms,
    parse_sqlite_url,
    shared_worker,
    transaction,
)
from .schema import Schema

__all__ = ["SQLiteSession"]

T = TypeVar("T")
_Q = TypeVar("_Q", bound="SQLiteSession")

#: The options of a SQLite session beyond the session options: the SDK's table names.
TABLE_OPTIONS = frozenset({"sessions_table", "messages_table"})

# Rows fetched at a time while pop looks for the newest decodable item.
_POP_BATCH = 32


def replace_rows(
    conn: sqlite3.Connection,
    schema: Schema,
    sid: str,
    now: int,
    ttl_ms: int | None,
    max_items: int | None,
    encoded: list[bytes],
    metadata: dict[str, str] | None,
    times: Times | None,
) -> None:
    """`storage_replace` inside a write transaction (and many sessions in one, for
    `SQLiteStore.replace_sessions`): the history, and when given the whole metadata."""
    schema.prepare_write(conn, sid, now)
    schema.mark_written(conn, sid, now, ttl_ms)
    schema.delete_messages(conn, sid)
    if metadata is not None:
        schema.replace_metadata(conn, sid, metadata)
    schema.insert_messages(conn, sid, encoded)
    if max_items is not None:
        schema.trim(conn, sid, max_items)
    if times is not None:
        schema.set_times(conn, sid, *times)


def new_worker(path: str, schema: Schema) -> ConnectionWorker:
    """A retained worker: private for an in-memory database, the process's shared one else."""
    if is_memory_path(path):
        return ConnectionWorker(path, schema)
    return shared_worker(path, schema)


def _opened(conn: sqlite3.Connection) -> None:
    """A job that does nothing: running it opens the connection and installs the schema."""


class SQLiteSession(BaseSession):
    """A session in a SQLite file, in the tables of the SDK's own `SQLiteSession`.

    Each operation is one transaction run on a connection's worker thread; writes begin
    IMMEDIATE, so concurrent processes on one file neither lose nor interleave batches.
    With the default `":memory:"` the session has a private in-memory database, as the SDK's.
    `close()` takes effect at once and may be awaited or not.
    """

    kind = "SQLiteSession"

    def __init__(
        self,
        session_id: str,
        db_path: str | os.PathLike[str] = ":memory:",
        *,
        ttl: float | None = None,
        refresh_ttl_on_read: bool = True,
        max_turns: int | None = None,
        max_items: int | None = None,
        session_settings: Any = None,
        on_corrupt: OnCorrupt = "skip",
        max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES,
        sessions_table: str = "agent_sessions",
        messages_table: str = "agent_messages",
        connection: ConnectionWorker | None = None,
        owns_connection: bool = True,
        store: object = None,
        **unknown: NoReturn,
    ) -> None:
        """`connection` is what a store or a fork hands over: a worker on `db_path` whose
        schema names the tables. With `owns_connection` the session holds one reference to
        it (released at close); `store` is kept alive while the session is. Any other
        keyword raises `ConfigurationError` naming it."""
        options, _ = resolve_options(
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
        path = as_db_path(db_path)
        schema = Schema(sessions_table, messages_table) if connection is None else None
        super().__init__(session_id, options)  # validates before a worker is retained
        opened_here = connection is None
        if connection is None:
            assert schema is not None
            connection = new_worker(path, schema)
        self.db_path = path
        self._worker = connection
        self._schema = connection.schema
        # A store's sessions keep the store alive: its finalizer would close their worker.
        self._store = store
        self._owns_worker = owns_connection
        # Releases our reference to the worker exactly once: at close(), or when a session
        # nobody closed is garbage-collected or the interpreter exits (code written for the
        # SDK often never closes its sessions).
        self._finalizer: Callable[[], Any] | None = (
            weakref.finalize(self, connection.release) if owns_connection else None
        )
        if opened_here:
            # As the SDK's SQLiteSession: the tables exist once the constructor returns (a
            # missing directory fails here, naming it). Blocking, like the SDK's constructor,
            # but on the connection's own thread.
            try:
                self._worker.run_blocking(_opened, self.kind)
            except BaseException:
                self._release_now()
                raise

    @classmethod
    def from_url(cls: type[_Q], session_id: str, url: str, **options: Any) -> _Q:
        """A session on the database a `sqlite://` URL names; keyword options win.

        `sqlite://` gives the session a private in-memory database.
        """
        parsed = parse_sqlite_url(url)
        session_options, tables = resolve_options(
            [parsed.session_options, parsed.table_options, parsed.store_options, options],
            extra=TABLE_OPTIONS,
            context=f"{cls.__name__}.from_url({session_id!r}, {mask_url(url)!r}, ...)",
        )
        return cls(session_id, parsed.path, **tables, **session_options.keywords())

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(session_id={self.session_id!r}, db_path={self.db_path!r}, "
            f"ttl={self.ttl!r})"
        )

    @property
    def sessions_table(self) -> str:
        return self._schema.sessions_table

    @property
    def messages_table(self) -> str:
        return self._schema.messages_table

    async def _run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        return await self._worker.run(job, self.kind)

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> Awaitable[None]:
        """Close now; awaiting the result is optional (the SDK's `close()` is synchronous).

        A session handed out by a store leaves the store's connection open.
        """
        if not self._closed:
            self._closed = True
            self._release_now()
        return self._done()

    def _release_now(self) -> None:
        if self._finalizer is not None:
            self._finalizer()

    async def storage_close(self) -> None:
        self._release_now()

    # -- storage primitives ----------------------------------------------------------------

    async def storage_read(self, count: int | None) -> tuple[list[RawItem], int]:
        schema, sid = self._schema, self.session_id
        ttl_ms = self._options.ttl_ms
        refresh = ttl_ms is not None and self._options.refresh_ttl_on_read

        def job(conn: sqlite3.Connection) -> tuple[list[RawItem], int]:
            with transaction(conn, write=refresh):
                now = now_ms()
                state = schema.live_state(conn, sid, now)
                if state is None:
                    return [], 0
                raws: list[RawItem] = list(schema.read_items(conn, sid, count))
                if refresh:
                    assert ttl_ms is not None
                    schema.sweep(conn, now)
                    schema.set_expiry(conn, sid, now + ttl_ms)
                return raws, state.item_count

        return await self._run(job)

    async def storage_append(self, encoded: list[bytes], token: str, token_ttl_ms: int) -> bool:
        schema, sid = self._schema, self.session_id
        ttl_ms, max_items = self._options.ttl_ms, self._options.max_items

        def job(conn: sqlite3.Connection) -> bool:
            with transaction(conn, write=True):
                now = now_ms()  # read under the write lock: update times never go backwards
                schema.prepare_write(conn, sid, now)
                # Tokens outlive a clear or an expiry: a late resend is still recognized.
                if schema.token_seen(conn, sid, token, now):
                    return False
                schema.mark_written(conn, sid, now, ttl_ms)
                schema.record_token(conn, sid, token, now, now + token_ttl_ms)
                schema.insert_messages(conn, sid, encoded)
                if max_items is not None:
                    schema.trim(conn, sid, max_items)
                return True

        return await self._run(job)

    async def storage_pop(self, skip_corrupt: bool) -> PopResult | None:
        schema, sid = self._schema, self.session_id
        ttl_ms = self._options.ttl_ms

        def job(conn: sqlite3.Connection) -> PopResult | None:
            with transaction(conn, write=True):
                now = now_ms()
                schema.sweep(conn, now)
                state = schema.live_state(conn, sid, now)
                if state is None:
                    return None
                cursor = schema.newest_first(conn, sid)
                offset = 0
                try:
                    while rows := cursor.fetchmany(_POP_BATCH):
                        for row_id, raw in rows:
                            position = state.item_count - 1 - offset
                            offset += 1
                            try:
                                decode_item(raw)
                            except (ValueError, TypeError):
                                if skip_corrupt:
                                    continue  # left in place for inspection
                                return PopResult(raw=raw, position=position, corrupt=True)
                            cursor.close()
                            schema.delete_message(conn, row_id)
                            schema.mark_written(conn, sid, now, ttl_ms)
                            return PopResult(raw=raw, position=position)
                finally:
                    cursor.close()
                return None

        return await self._run(job)

    async def storage_delete(self) -> bool:
        schema, sid = self._schema, self.session_id

        def job(conn: sqlite3.Connection) -> bool:
            with transaction(conn, write=True):
                now = now_ms()
                existed = schema.live_state(conn, sid, now) is not None
                schema.delete_session_rows(conn, sid)
                schema.sweep(conn, now)
                return existed

        return await self._run(job)

    async def storage_replace(
        self,
        encoded: list[bytes],
        metadata: Mapping[str, str] | None,
        times: Times | None = None,
    ) -> None:
        schema, sid = self._schema, self.session_id
        ttl_ms, max_items = self._options.ttl_ms, self._options.max_items
        pairs = None if metadata is None else dict(metadata)

        def job(conn: sqlite3.Connection) -> None:
            with transaction(conn, write=True):
                replace_rows(conn, schema, sid, now_ms(), ttl_ms, max_items, encoded, pairs, times)

        await self._run(job)

    async def storage_snapshot(self) -> Snapshot | None:
        schema, sid = self._schema, self.session_id

        def job(conn: sqlite3.Connection) -> Snapshot | None:
            with transaction(conn, write=False):
                if schema.live_state(conn, sid, now_ms()) is None:
                    return None
                raws: list[RawItem] = list(schema.read_items(conn, sid))
                return Snapshot(raws=raws, metadata=schema.metadata(conn, sid))

        return await self._run(job)

    async def storage_info(self) -> SessionInfo | None:
        schema, sid = self._schema, self.session_id

        def job(conn: sqlite3.Connection) -> SessionInfo | None:
            with transaction(conn, write=False):
                return schema.info(conn, sid, now_ms())

        return await self._run(job)

    async def storage_update_metadata(self, set_pairs: dict[str, str], remove: list[str]) -> None:
        schema, sid = self._schema, self.session_id
        ttl_ms = self._options.ttl_ms

        def job(conn: sqlite3.Connection) -> None:
            with transaction(conn, write=True):
                now = now_ms()
                if schema.prepare_write(conn, sid, now) is None and not set_pairs:
                    return  # removing keys from an absent session creates nothing
                schema.mark_written(conn, sid, now, ttl_ms)
                schema.update_metadata(conn, sid, set_pairs, remove)

        await self._run(job)

    async def storage_touch(self) -> bool:
        schema, sid = self._schema, self.session_id
        ttl_ms = self._options.ttl_ms

        def job(conn: sqlite3.Connection) -> bool:
            with transaction(conn, write=True):
                now = now_ms()
                schema.sweep(conn, now)
                if schema.live_state(conn, sid, now) is None:
                    return False
                schema.set_expiry(conn, sid, None if ttl_ms is None else now + ttl_ms)
                return True

        return await self._run(job)

    # -- the session lock -------------------------------------------------------------------

    async def storage_lock_acquire(self, token: str, lease_ms: int) -> bool:
        schema, sid = self._schema, self.session_id

        def job(conn: sqlite3.Connection) -> bool:
            with transaction(conn, write=True):
                return schema.lock_acquire(conn, sid, token, now_ms(), lease_ms)

        return await self._run(job)

    async def storage_lock_renew(self, token: str, lease_ms: int) -> bool:
        schema, sid = self._schema, self.session_id

        def job(conn: sqlite3.Connection) -> bool:
            with transaction(conn, write=True):
                return schema.lock_renew(conn, sid, token, now_ms(), lease_ms)

        return await self._run(job)

    async def storage_lock_release(self, token: str) -> bool:
        schema, sid = self._schema, self.session_id

        def job(conn: sqlite3.Connection) -> bool:
            with transaction(conn, write=True):
                return schema.lock_release(conn, sid, token, now_ms())

        return await self._run(job)

    def sibling(self: _Q, session_id: str) -> _Q:
        worker = self._worker
        # A fork outlives its source: it holds its own reference to the connection (for an
        # in-memory database, the only one that reaches the data).
        owns = self._owns_worker and worker.retain()
        return type(self)(
            session_id,
            self.db_path,
            connection=worker,
            owns_connection=owns,
            store=None if owns else self._store,
            **self._options.keywords(),
        )
