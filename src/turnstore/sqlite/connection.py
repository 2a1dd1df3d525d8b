"""SQLite connections, each owned by one worker thread, and `sqlite://` URLs.

`sqlite3` blocks, so no event loop may call it. As in aiosqlite, every connection belongs to a
dedicated thread that runs submitted jobs one at a time, in order; a job's result is handed
back to the event loop that asked for it with `loop.call_soon_threadsafe`. Any loop in any
thread may submit jobs, so one session serves `Runner.run_sync`'s private loop as well.

Connections run in WAL mode (readers never wait for the writer, and the writer does not wait
for readers) with a 30 s busy timeout. Autocommit mode lets every job say how it transacts:
`BEGIN IMMEDIATE` takes the file's write lock before reading, so two processes can never
interleave or lose each other's writes, and a read-then-write job never fails to upgrade.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from ..backend import request_answered
from ..errors import (
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    SessionClosedError,
)
from ..urls import mask_url, split_options
from .schema import Schema

__all__ = [
    "BUSY_TIMEOUT_S",
    "ConnectionWorker",
    "SQLiteURL",
    "as_db_path",
    "backend_error",
    "is_memory_path",
    "now_ms",
    "open_connection",
    "parse_sqlite_url",
    "shared_worker",
    "transaction",
]

T = TypeVar("T")

#: How long a statement waits for another connection's lock before failing.
BUSY_TIMEOUT_S = 30.0

Job = Callable[[sqlite3.Connection], Any]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def as_db_path(db_path: object) -> str:
    """`db_path` as a str path; `ConfigurationError` for anything else."""
    if isinstance(db_path, (str, os.PathLike)):
        path = os.fspath(db_path)
        if isinstance(path, str):
            return path
    raise ConfigurationError(f"db_path must be a str or os.PathLike[str], not {db_path!r}")


def is_memory_path(path: str) -> bool:
    # "" is a private temporary database in SQLite: as unshareable as ":memory:".
    return path in (":memory:", "")


def _enable_wal(conn: sqlite3.Connection, busy_timeout: float = BUSY_TIMEOUT_S) -> None:
    # Switching the journal mode can report "locked" at once while another process is
    # initialising the same file, without going through the busy handler: retry until the
    # busy timeout would have expired.
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc).lower() or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def backend_error(path: str, exc: sqlite3.Error) -> BackendError:
    """The public error for a driver error on the database at `path` (raise it `from exc`)."""
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return BackendUnavailableError(f"SQLite database {path}: {text}")
    return BackendError(f"SQLite database {path}: {text}")


def _connect(path: str, *, read_only: bool, busy_timeout: float) -> sqlite3.Connection:
    """`sqlite3.connect`, with a missing file or directory reported by name."""
    if not is_memory_path(path):
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise BackendError(
                f"cannot open the SQLite database {path}: the directory {folder} does not exist"
            )
        if read_only and not os.path.exists(path):
            raise BackendError(f"cannot open the SQLite database {path}: it does not exist")
    target, uri = path, False
    if read_only and not is_memory_path(path):
        # mode=ro: SQLite itself refuses every write, so the file stays byte-identical.
        target, uri = f"file:{quote(os.path.abspath(path))}?mode=ro", True
    try:
        return sqlite3.connect(
            target,
            timeout=busy_timeout,
            isolation_level=None,
            cached_statements=256,
            uri=uri,
            check_same_thread=True,
        )
    except sqlite3.Error as exc:
        raise BackendError(f"cannot open the SQLite database {path}: {exc}") from exc


def open_connection(
    path: str,
    schema: Schema,
    *,
    read_only: bool = False,
    busy_timeout: float = BUSY_TIMEOUT_S,
) -> sqlite3.Connection:
    """A connection in autocommit mode, WAL, with the schema installed.

    `read_only=True` changes nothing in the file: no WAL switch, no schema; the side tables
    a file lacks (one the SDK wrote) are stood in for by temporary views over its tables.
    """
    # An in-memory database is this connection's own: there is no file to protect.
    read_only = read_only and not is_memory_path(path)
    conn = _connect(path, read_only=read_only, busy_timeout=busy_timeout)
    try:
        if read_only:
            schema.stand_in(conn, path)
            return conn
        if not is_memory_path(path):
            _enable_wal(conn, busy_timeout)
            # In WAL mode NORMAL never corrupts the file and survives application crashes;
            # only an OS crash or power loss may drop the last commits.
            conn.execute("PRAGMA synchronous = NORMAL")
        schema.install(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise backend_error(path, exc) from exc
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection, *, write: bool) -> Iterator[None]:
    """One transaction: committed when the block ends, rolled back if it raises.

    `write=True` begins IMMEDIATE: the write lock is taken up front (waiting out other
    processes' writers), so what the block reads cannot change before it writes.
    """
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@dataclass(frozen=True)
class _Request:
    job: Job
    loop: asyncio.AbstractEventLoop | None  # None: a blocking caller waits on `future`
    future: asyncio.Future[Any] | concurrent.futures.Future[Any]

    def settle(self, result: Any, error: BaseException | None) -> None:
        if self.loop is None:
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)
            return
        assert isinstance(self.future, asyncio.Future)
        # A closed event loop refuses the call: nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(_settle, self.future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller was cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class ConnectionWorker:
    """One connection owned by one daemon thread, which runs jobs in submission order.

    Nothing happens until the first job: the thread starts then, and opens the connection
    (installing the schema). The worker is reference-counted: `retain` adds an owner,
    `release` drops one, and the last release stops the thread after the jobs already queued
    and closes the connection. Jobs submitted after that raise `SessionClosedError`.
    """

    def __init__(
        self,
        path: str,
        schema: Schema,
        *,
        read_only: bool = False,
        busy_timeout: float = BUSY_TIMEOUT_S,
    ) -> None:
        self.path = path
        self.schema = schema
        self.read_only = read_only
        self.busy_timeout = busy_timeout
        self._guard = threading.RLock()  # reentrant: a GC finalizer may release mid-submit
        self._refs = 1
        self._closed = False
        self._reset()

    def _reset(self) -> None:
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"refs={self._refs}"
        return f"<ConnectionWorker {self.path!r} {state}>"

    @property
    def closed(self) -> bool:
        return self._closed

    def retain(self) -> bool:
        """Add an owner; False when the worker is already closed."""
        with self._guard:
            if self._closed:
                return False
            self._refs += 1
            return True

    def release(self) -> None:
        """Drop an owner; the last one stops the thread and closes the connection.

        The jobs already queued still run: this waits for them (unless called from the
        worker thread itself), so the connection is closed when it returns.
        """
        with self._guard:
            if self._closed:
                return
            self._refs -= 1
            if self._refs > 0:
                return
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._queue.put(None)
        _forget(self)
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    async def run(self, job: Callable[[sqlite3.Connection], T], owner: str = "SQLiteSession") -> T:
        """Run `job(connection)` on the worker thread and return its result.

        Raises `SessionClosedError` ("<owner> is closed") once the worker is closed, and a
        driver error as `BackendError` (its `__cause__`). If the caller is cancelled before
        the job starts, the job does not run.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._submit(_Request(job, loop, future), owner)
        try:
            result = await future
        except sqlite3.Error as exc:
            raise backend_error(self.path, exc) from exc
        request_answered()
        return result

    def run_blocking(self, job: Callable[[sqlite3.Connection], T], owner: str) -> T:
        """`run`, for a caller that is not a coroutine (a constructor): waits in this thread."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._submit(_Request(job, None, future), owner)
        try:
            return future.result()
        except sqlite3.Error as exc:
            raise backend_error(self.path, exc) from exc

    def _submit(self, request: _Request, owner: str) -> None:
        with self._guard:
            if self._closed:
                raise SessionClosedError(f"{owner} is closed")
            if self._pid != os.getpid():
                # A forked child: the parent's thread does not exist here, and its connection
                # must not be used across fork(). Start over lazily.
                self._reset()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve,
                    name=f"turnstore-sqlite:{self.path}",
                    daemon=True,  # an unclosed session must not keep the interpreter alive
                )
                self._thread.start()
            self._queue.put(request)

    def _serve(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                request = self._queue.get()
                if request is None:
                    return
                if request.future.cancelled():
                    continue
                result: Any = None
                error: BaseException | None = None
                try:
                    if conn is None:
                        conn = open_connection(
                            self.path,
                            self.schema,
                            read_only=self.read_only,
                            busy_timeout=self.busy_timeout,
                        )
                    result = request.job(conn)
                except BaseException as exc:
                    error = exc
                    if conn is not None and conn.in_transaction:
                        # A failed job never leaves its transaction (and the file's write
                        # lock) open for the next job or for other processes.
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                request.settle(result, error)
        finally:
            if conn is not None:
                conn.close()


# One worker per database file (and table pair) per process, shared by the standalone
# sessions opened on it, as the SDK shares its file lock: one connection, one thread, and the
# schema checked once, however many sessions a process opens on a file.
_SHARED: dict[tuple[int, str, str, str], ConnectionWorker] = {}
_SHARED_GUARD = threading.RLock()


def _shared_key(path: str, schema: Schema) -> tuple[int, str, str, str]:
    return (os.getpid(), path, schema.sessions_table, schema.messages_table)


def shared_worker(path: str, schema: Schema) -> ConnectionWorker:
    """A retained worker for a file: the process's existing one, or a new one.

    `path` is a file path (not ":memory:"); the caller releases the worker when done.
    """
    path = os.path.abspath(path)
    key = _shared_key(path, schema)
    with _SHARED_GUARD:
        worker = _SHARED.get(key)
        if worker is not None and worker.retain():
            return worker
        worker = ConnectionWorker(path, schema)
        _SHARED[key] = worker
        return worker


def _forget(worker: ConnectionWorker) -> None:
    key = _shared_key(worker.path, worker.schema)
    with _SHARED_GUARD:
        if _SHARED.get(key) is worker:
            del _SHARED[key]


# -- URLs -------------------------------------------------------------------------------------

_TABLE_OPTIONS = ("sessions_table", "messages_table")
_STORE_OPTIONS = ("index_metadata",)


@dataclass(frozen=True)
class SQLiteURL:
    """What a `sqlite://` URL says: the database path and the options it sets."""

    path: str  # ":memory:" for sqlite://
    session_options: dict[str, Any]
    table_options: dict[str, str]
    store_options: dict[str, str]  # index_metadata: a store's, refused by a session


def parse_sqlite_url(url: str) -> SQLiteURL:
    """Parse `sqlite:///relative.db`, `sqlite:////abs/path.db` or `sqlite://` (in memory).

    Query parameters set session options and `sessions_table`/`messages_table`; anything
    else, a host, or a fragment raises `ConfigurationError`.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"a SQLite URL must be a str, not {type(url).__name__}")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigurationError(f"not a SQLite URL: {mask_url(url)!r} ({exc})") from None
    if parts.scheme.lower() != "sqlite" or not url.lower().startswith("sqlite://"):
        raise ConfigurationError(f"not a sqlite:// URL: {mask_url(url)!r}")
    if parts.netloc:
        raise ConfigurationError(
            f"a SQLite URL has no host: {mask_url(url)!r} "
            "(use sqlite:///relative.db, sqlite:////absolute/path.db or sqlite://)"
        )
    if parts.fragment:
        raise ConfigurationError(f"a SQLite URL has no fragment: {mask_url(url)!r}")
    # sqlite:///x.db -> "/x.db" -> "x.db"; sqlite:////abs.db -> "//abs.db" -> "/abs.db".
    path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
    if path in ("", ":memory:"):
        path = ":memory:"
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ConfigurationError(f"bad query string in {mask_url(url)!r}") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise ConfigurationError(f"option {name!r} given twice in {mask_url(url)!r}")
        params[name] = value
    session_options, rest = split_options(params, url, {*_TABLE_OPTIONS, *_STORE_OPTIONS})
    return SQLiteURL(
        path=path,
        session_options=session_options,
        table_options={k: v for k, v in rest.items() if k in _TABLE_OPTIONS},
        store_options={k: v for k, v in rest.items() if k in _STORE_OPTIONS},
    )
