"""Stores: the `SessionStore` protocol, the URL registry of backends, and `open_store`.

A backend is a *provider*: it registers the URL schemes it serves with an opener
`(url, **options) -> SessionStore`. Built-in providers are registered here; a third-party
package adds one through the entry-point group `turnstore.backends`, the entry point's
name being the scheme and its value the opener.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import importlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from importlib.metadata import EntryPoint, entry_points
from types import TracebackType
from typing import Any, Protocol, TypeVar, runtime_checkable

from .backend import SessionCopy, SessionWrite
from .errors import ConfigurationError, SessionClosedError
from .info import SessionInfo, SessionPage
from .session import BaseSession
from .urls import mask_url

__all__ = [
    "DEFAULT_URL",
    "ENTRY_POINT_GROUP",
    "BaseStore",
    "Progress",
    "SessionStore",
    "decode_cursor",
    "deletion_filters",
    "encode_cursor",
    "open_store",
    "register_backend",
    "registered_schemes",
    "unregister_backend",
]

DEFAULT_URL = "sqlite:///turnstore.db"
ENTRY_POINT_GROUP = "turnstore.backends"

StoreOpener = Callable[..., "SessionStore"]
#: What `reindex(progress=...)` calls with the number of sessions indexed so far.
Progress = Callable[[int], object]
_T = TypeVar("_T", bound="BaseStore")
_R = TypeVar("_R")

#: Sessions the generic `snapshot_sessions` and `replace_sessions` work on at once.
TRANSFER_CONCURRENCY = 64


@runtime_checkable
class SessionStore(Protocol):
    """A backend's session store: hands out sessions and lists, counts and deletes them."""

    def session(self, session_id: str, **overrides: Any) -> BaseSession: ...

    async def get_info(self, session_id: str) -> SessionInfo | None: ...

    async def list_sessions(
        self,
        *,
        limit: int = 100,
        cursor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> SessionPage: ...

    async def count_sessions(self) -> int: ...

    async def delete_session(self, session_id: str) -> bool: ...

    async def delete_sessions(
        self,
        *,
        metadata: Mapping[str, str] | None = None,
        updated_before: datetime | None = None,
        dry_run: bool = False,
    ) -> int: ...

    async def reindex(self, *, progress: Progress | None = None) -> int: ...

    async def purge_expired(self) -> int: ...

    async def count_expired(self) -> int: ...

    async def ping(self) -> bool: ...

    async def snapshot_sessions(self, session_ids: Sequence[str]) -> list[SessionCopy | None]: ...

    async def replace_sessions(self, writes: Sequence[SessionWrite]) -> None: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, *exc_info: Any) -> None: ...


class BaseStore(ABC):
    """Shared store behaviour: argument checks, the closed state, `async with`, and the
    generic `delete_sessions`, `reindex`, `snapshot_sessions` and `replace_sessions`.

    A backend's store subclasses it and implements the abstract methods below, the store
    half of the backend protocol (`turnstore.backend.StoreBackend`).
    """

    kind = "SessionStore"
    #: The metadata keys a listing filters on through an index (see `list_sessions`).
    index_metadata: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._closed = False

    # -- what a backend's store implements (turnstore.backend.StoreBackend) ------------------

    @abstractmethod
    def session(self, session_id: str, **overrides: Any) -> BaseSession:
        """A session sharing the store's storage and defaults (`overrides` win); no I/O."""

    @abstractmethod
    async def get_info(self, session_id: str) -> SessionInfo | None:
        """The session's `SessionInfo`, or None when it does not exist (or has expired)."""

    @abstractmethod
    async def list_sessions(
        self,
        *,
        limit: int = 100,
        cursor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> SessionPage:
        """One page of live sessions, most recently updated first; `next_cursor` is None on
        the last page. `metadata` keeps sessions having every given pair."""

    @abstractmethod
    async def count_sessions(self) -> int:
        """The number of live sessions, in time that does not grow with them."""

    @abstractmethod
    async def delete_session(self, session_id: str) -> bool:
        """Delete the session; True if it existed (and had not expired)."""

    @abstractmethod
    async def purge_expired(self) -> int:
        """Remove what has expired now; returns how many sessions it removed."""

    @abstractmethod
    async def ping(self) -> bool:
        """True when the backend answers, False when it cannot be reached in time."""

    @abstractmethod
    async def storage_close(self) -> None:
        """Close what the store owns; called once, by `close()`."""

    # -- shared behaviour ----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once `close()` was called; the store and its sessions refuse every call."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise SessionClosedError(f"{self.kind} is closed")

    @staticmethod
    def _check_page_args(limit: int, metadata: Mapping[str, str] | None) -> dict[str, str]:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigurationError(f"limit must be a positive int, not {limit!r}")
        wanted: dict[str, str] = {}
        for key, value in (metadata or {}).items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ConfigurationError("metadata filters are str -> str pairs")
            wanted[key] = value
        return wanted

    async def delete_sessions(
        self,
        *,
        metadata: Mapping[str, str] | None = None,
        updated_before: datetime | None = None,
        dry_run: bool = False,
    ) -> int:
        """Delete every live session matching all the given conditions; returns how many.

        `metadata` keeps sessions having every given pair; `updated_before` (timezone-aware)
        those last updated before it. At least one condition is required
        (`ConfigurationError`), so an empty call never empties a store. `dry_run=True` only
        counts. A session written again while this runs may or may not be deleted.
        """
        wanted = deletion_filters(metadata, updated_before)
        matching = await self._matching_sessions(wanted, updated_before)
        if dry_run:
            return len(matching)
        deleted = 0
        for session_id in matching:
            if await self.delete_session(session_id):
                deleted += 1
        return deleted

    async def _matching_sessions(
        self, metadata: dict[str, str], updated_before: datetime | None
    ) -> list[str]:
        # Every match is found before anything is deleted: a page cursor never points at a
        # session that this call removed meanwhile.
        found: list[str] = []
        cursor: str | None = None
        while True:
            page = await self.list_sessions(
                limit=_DELETE_PAGE, cursor=cursor, metadata=metadata or None
            )
            for info in page.sessions:
                if updated_before is None or info.updated_at < updated_before:
                    found.append(info.session_id)
            cursor = page.next_cursor
            if cursor is None:
                return found

    async def reindex(self, *, progress: Progress | None = None) -> int:
        """(Re)build the metadata index for the store's current `index_metadata`.

        For sessions written before a key was in `index_metadata` (or by a writer that did
        not index it): afterwards, `list_sessions(metadata=...)` on that key pages from the
        index and finds them. Sessions written while it runs are indexed by their writes.

        - Resumable: it works in steps that each commit; interrupted (a crash, a timeout,
          `progress` raising), the next call continues where the last step ended.
        - Cheap and correct on a complete index: it returns 0 and changes nothing.
        - `progress(done)` is called after each step with the number of sessions indexed
          so far by this call.

        Returns the number of live sessions this call indexed. This default serves a
        backend that keeps no index of its own: with no `index_metadata` there is nothing
        to build (0); a backend with one overrides it.
        """
        self._check_open()
        if self.index_metadata:
            raise NotImplementedError(f"{type(self).__name__} does not implement reindex()")
        return 0

    async def count_expired(self) -> int:
        """How many sessions `purge_expired()` would remove now; changes nothing.

        This default raises `NotImplementedError` (no store primitive sees an expired
        session); the built-in backends override it.
        """
        self._check_open()
        raise NotImplementedError(
            f"{type(self).__name__} cannot count expired sessions without removing them"
        )

    # -- whole sessions at a time (export, import, migrate) ---------------------------------

    def _copy_session(self, session_id: str, **overrides: Any) -> BaseSession:
        # No window, no limit and no sliding expiry: a copy must see, and change, nothing else.
        return self.session(
            session_id,
            max_turns=None,
            session_settings=None,
            refresh_ttl_on_read=False,
            **overrides,
        )

    async def snapshot_sessions(self, session_ids: Sequence[str]) -> list[SessionCopy | None]:
        """For each id, in order, its `SessionCopy`, or None when it is not live.

        The generic form: each session's `storage_info` then `storage_snapshot` (whose items
        and metadata are read in one step), `TRANSFER_CONCURRENCY` sessions at a time. The
        TTL is not refreshed. A bad id raises `ConfigurationError` before anything is read.
        """
        self._check_open()
        sessions = [self._copy_session(session_id) for session_id in session_ids]

        async def read(session: BaseSession) -> SessionCopy | None:
            info = await session.storage_info()
            if info is None:
                return None
            snapshot = await session.storage_snapshot()
            if snapshot is None:  # deleted between the two reads
                return None
            info = dataclasses.replace(
                info, item_count=len(snapshot.raws), metadata=dict(snapshot.metadata)
            )
            return SessionCopy(info=info, raws=list(snapshot.raws))

        return await gather_bounded([read(session) for session in sessions])

    async def replace_sessions(self, writes: Sequence[SessionWrite]) -> None:
        """Make each written session hold exactly its write's items and metadata.

        The generic form: each session's `storage_replace` (atomic per session),
        `TRANSFER_CONCURRENCY` sessions at a time; not atomic across sessions. A bad id or
        ttl raises `ConfigurationError` before anything is written.
        """
        self._check_open()
        sessions = [
            self._copy_session(
                write.session_id, **({} if write.ttl is None else {"ttl": write.ttl})
            )
            for write in writes
        ]
        await gather_bounded(
            [
                session.storage_replace(write.encoded, write.metadata, write.times)
                for session, write in zip(sessions, writes, strict=True)
            ]
        )

    async def close(self) -> None:
        """Close what the store owns; sessions it handed out stop working."""
        if self._closed:
            return
        self._closed = True
        await self.storage_close()

    async def __aenter__(self: _T) -> _T:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


#: Sessions listed per page while `delete_sessions` looks for matches.
_DELETE_PAGE = 500


async def gather_bounded(
    jobs: Sequence[Awaitable[_R]], limit: int = TRANSFER_CONCURRENCY
) -> list[_R]:
    """The results of `jobs` in order, at most `limit` of them running at once.

    Every job runs to its end even when another fails (a task cancelled mid-command could
    leave its connection unusable); the first failure is raised afterwards.
    """
    gate = asyncio.Semaphore(limit)

    async def gated(job: Awaitable[_R]) -> _R:
        async with gate:
            return await job

    results = await asyncio.gather(*(gated(job) for job in jobs), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


def deletion_filters(
    metadata: Mapping[str, str] | None, updated_before: datetime | None
) -> dict[str, str]:
    """The checked metadata filter of `delete_sessions`; at least one condition required."""
    if updated_before is not None and (
        not isinstance(updated_before, datetime) or updated_before.tzinfo is None
    ):
        raise ConfigurationError(
            f"updated_before must be a timezone-aware datetime, not {updated_before!r}"
        )
    wanted = BaseStore._check_page_args(1, metadata)
    if not wanted and updated_before is None:
        raise ConfigurationError(
            "delete_sessions needs a condition (metadata or updated_before); "
            "it never deletes every session"
        )
    return wanted


def encode_cursor(updated_ms: int, session_id: str) -> str:
    """An opaque cursor: the (updated time, id) of the last session of a page."""
    raw = json.dumps([updated_ms, session_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        updated_ms, session_id = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(updated_ms, int) or not isinstance(session_id, str):
            raise ValueError
    except (ValueError, TypeError):
        raise ConfigurationError(f"not a cursor of list_sessions: {cursor!r}") from None
    return updated_ms, session_id


# Openers registered at run time, and those loaded from entry points (on first use of their
# scheme). Entry points themselves are looked up when a scheme is not here, so a package
# installed while the process runs is found; a broken third-party package must not break
# the other schemes, so only the entry point of the scheme being opened is loaded.
_BACKENDS: dict[str, StoreOpener] = {}

# Built-in providers, imported on first use so that opening SQLite never imports redis-py's
# cluster machinery and the other way round.
_BUILTIN: dict[str, str] = {
    "sqlite": "turnstore.sqlite.store:open_sqlite_store",
    "redis": "turnstore.redis.store:open_redis_store",
    "rediss": "turnstore.redis.store:open_redis_store",
    "unix": "turnstore.redis.store:open_redis_store",
    "redis+sentinel": "turnstore.redis.store:open_redis_store",
    "redis+cluster": "turnstore.redis.store:open_redis_store",
    "memory": "turnstore.memory.store:open_memory_store",
}


def _builtin(scheme: str) -> StoreOpener | None:
    target = _BUILTIN.get(scheme)
    if target is None:
        return None
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    opener: StoreOpener = getattr(module, attr)
    return opener


def _schemes(schemes: str | tuple[str, ...]) -> list[str]:
    return [scheme.lower() for scheme in ((schemes,) if isinstance(schemes, str) else schemes)]


def register_backend(schemes: str | tuple[str, ...], opener: StoreOpener) -> None:
    """Serve `schemes` (e.g. `"dynamodb"`) with `opener(url, **options) -> SessionStore`.

    A registered scheme wins over a built-in one and over an entry point of the same name.
    """
    for scheme in _schemes(schemes):
        _BACKENDS[scheme] = opener


def unregister_backend(schemes: str | tuple[str, ...]) -> None:
    """Stop serving `schemes` with what `register_backend` registered (or what an entry
    point of the scheme loaded): next time, a built-in scheme is served by its built-in
    backend and any other is looked up among the entry points again. A scheme that was not
    registered is ignored."""
    for scheme in _schemes(schemes):
        _BACKENDS.pop(scheme, None)


def _entry_points() -> dict[str, EntryPoint]:
    """The installed entry points of the group, by scheme (the first of a name wins)."""
    found: dict[str, EntryPoint] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name.lower(), entry)
    return found


def _from_entry_point(scheme: str) -> StoreOpener | None:
    entry = _entry_points().get(scheme)
    if entry is None:
        return None
    try:
        opener: StoreOpener = entry.load()
    except Exception as exc:
        raise ConfigurationError(
            f"the backend for {scheme!r} URLs ({entry.value}) failed to load: {exc!r}"
        ) from exc
    _BACKENDS[scheme] = opener
    return opener


def registered_schemes() -> list[str]:
    """Every scheme `open_store` serves: built in, registered, or installed entry points."""
    return sorted(set(_BACKENDS) | set(_BUILTIN) | set(_entry_points()))


def open_store(url: str | None = None, **options: Any) -> SessionStore:
    """Open the store a URL names (no I/O until first use).

    `url=None` reads `$TURNSTORE_URL`, else uses `sqlite:///turnstore.db`. Keyword
    options override query parameters. An unknown scheme raises `ConfigurationError`.
    """
    if url is None:
        url = os.environ.get("TURNSTORE_URL") or DEFAULT_URL
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(f"not a store URL: {mask_url(str(url))!r}")
    scheme = url.split("://", 1)[0].lower()
    opener = _BACKENDS.get(scheme) or _builtin(scheme) or _from_entry_point(scheme)
    if opener is None:
        raise ConfigurationError(
            f"unknown URL scheme {scheme!r} in {mask_url(url)!r}; "
            f"known: {', '.join(registered_schemes())}"
        )
    return opener(url, **options)
