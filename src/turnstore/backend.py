"""The public protocol a backend implements.

A backend is two classes and an opener:

- a session class: a subclass of `turnstore.BaseSession` that implements the storage
  primitives of `SessionBackend` below. `BaseSession` writes the whole session contract
  (limits, turn windows, validation, the corrupt-item policy, fork, locks, the closed state)
  once, on top of these primitives, so a backend never validates, decodes or windows;
- a store class: a subclass of `turnstore.BaseStore` with the methods of `StoreBackend`;
- an opener `(url, **options) -> store`, registered for its URL schemes with
  `turnstore.register_backend` or through the entry-point group `turnstore.backends`.

Items reach a backend encoded (`bytes` of one JSON object each, already validated) and come
back as the backend stored them (`bytes` or `str`). Every primitive is one atomic step of the
storage: a reader never sees half of a write. `python -m turnstore.conformance URL` checks a
backend against the same suite the built-in backends pass; docs/backends.md walks through
writing one.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .errors import ConfigurationError
from .info import SessionInfo, SessionPage

__all__ = [
    "AUTO_TOKEN_TTL_MS",
    "IDEMPOTENCY_TTL_MS",
    "PopResult",
    "RawItem",
    "SessionBackend",
    "SessionCopy",
    "SessionWrite",
    "Snapshot",
    "StoreBackend",
    "Times",
    "batch_token",
    "is_batch_token",
    "request_answered",
    "validate_index_metadata",
    "watch_answers",
]

#: A stored item as the storage returns it: the JSON text of one item.
RawItem = bytes | str
#: A session's own (created, updated) times in milliseconds since the epoch, for a copy
#: (import, migrate) that keeps them instead of taking the time of the write.
Times = tuple[int, int]

#: How long the automatic batch token of an `add_items` call is remembered. It only has to
#: outlive the retries of one call (redis-py's own and the library's), which take seconds.
AUTO_TOKEN_TTL_MS = 10 * 60 * 1000
#: How long an explicit `idempotency_key` is remembered at least (longer if the TTL is).
IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000


def _fresh_token_source() -> None:
    global _token_prefix, _token_serials
    _token_prefix = "b:" + secrets.token_urlsafe(12) + "."
    _token_serials = itertools.count()


_token_prefix = ""
_token_serials = itertools.count()
_fresh_token_source()
# A forked child would repeat its parent's tokens, and a repeated token drops a batch.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_token_source)


def batch_token() -> str:
    """A token no other batch has: 96 random bits per process, then a serial number.

    Several times cheaper than fresh random bytes per call, which the append path notices.
    """
    return f"{_token_prefix}{next(_token_serials):x}"


def is_batch_token(token: str) -> bool:
    """True for a token `batch_token` made (an `add_items` call's own), False for one made
    from an `idempotency_key`, which must be remembered for its whole window."""
    return token.startswith("b:")


#: Who hears of each answered request in this context (`watch_answers`); None: nobody.
_ANSWERED: ContextVar[Callable[[], object] | None] = ContextVar("turnstore_answered", default=None)


def request_answered() -> None:
    """A backend calls this each time its storage answers one request (a page, a batch, a
    transaction), on the event loop, in the task that made the request.

    A call of many requests (`purge_expired`, `delete_sessions`, a listing of many pages)
    then shows that it is moving to a caller that bounds the time between answers (the
    CLI's `--timeout`), which would otherwise see one long call. Does nothing (one context
    lookup) unless a caller watches.
    """
    listener = _ANSWERED.get()
    if listener is not None:
        listener()


@contextmanager
def watch_answers(listener: Callable[[], object]) -> Iterator[None]:
    """Call `listener()` at each `request_answered()` in this context and in the tasks
    started in it while the block runs (they keep the listener after it ends)."""
    token = _ANSWERED.set(listener)
    try:
        yield
    finally:
        _ANSWERED.reset(token)


@dataclass(frozen=True)
class PopResult:
    """What `storage_pop` found: the raw newest item and its position (0 = oldest)."""

    raw: RawItem
    position: int
    corrupt: bool = False  # True: not removed (on_corrupt="raise" stops at it)


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of a session's stored state (fork, export, import)."""

    raws: list[RawItem]
    metadata: dict[str, str]


@dataclass(frozen=True)
class SessionCopy:
    """A live session's whole stored state, as `snapshot_sessions` reads it (export, migrate).

    `info` holds its times, expiry and metadata (`info.item_count == len(raws)`); `raws` are
    every stored item, oldest first, as the storage holds them.
    """

    info: SessionInfo
    raws: list[RawItem]


@dataclass(frozen=True)
class SessionWrite:
    """What `replace_sessions` makes one session hold: its whole history and metadata."""

    session_id: str
    encoded: list[bytes]  # validated, encoded items (`BaseSession.encode`)
    metadata: dict[str, str]
    #: (created, updated) in ms to keep, as `storage_replace` takes them; None: now.
    times: Times | None = None
    #: Seconds until the session expires; None: the store's `ttl` applies.
    ttl: float | None = None


def validate_index_metadata(names: object) -> tuple[str, ...]:
    """`index_metadata` as a tuple of distinct non-empty keys; `ConfigurationError` else.

    A `str` is only the URL form, comma-separated (`?index_metadata=user_id,tenant`): it is
    split and its parts stripped; `""` names no key. A repeated key, an empty key (`"a,,b"`,
    `[""]`) or a key that is not a `str` is refused rather than dropped, since it is a
    mistake in the configuration.
    """
    if isinstance(names, str):
        if not names.strip():
            return ()
        names = [part.strip() for part in names.split(",")]
    if not isinstance(names, Sequence) or isinstance(names, (bytes, bytearray)):
        raise ConfigurationError(
            f"index_metadata must be a sequence of metadata keys, not {names!r}"
        )
    keys: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"index_metadata keys must be non-empty str, not {name!r}")
        if name in keys:
            raise ConfigurationError(f"index_metadata names {name!r} twice")
        keys.append(name)
    return tuple(keys)


@runtime_checkable
class SessionBackend(Protocol):
    """The storage primitives of one session, which `BaseSession` builds the contract on.

    Each is one atomic step of the storage and raises the package's errors (a driver's
    error as `__cause__`), never a bare driver error. "Live" means written and not past
    its TTL: an expired session reads as absent even before its storage is reclaimed.
    Writes (append, pop, replace, metadata) set the session's expiry to now + `ttl` (no
    expiry without one) and its update time to now, and keep any metadata index of the store.
    """

    session_id: str

    async def storage_read(self, count: int | None) -> tuple[list[RawItem], int]:
        """The newest `count` stored items (all when None), oldest first, and the total.

        Costs O(count), not O(history). Refreshes the TTL when `options.refresh_ttl_on_read`
        and a TTL is set. An absent session gives `([], 0)`.
        """
        ...

    async def storage_append(self, encoded: list[bytes], token: str, token_ttl_ms: int) -> bool:
        """Append the batch unless `token` was seen for this session; False when it was.

        The token is remembered for `token_ttl_ms`, through a clear or an expiry of the
        session. Trims the oldest items beyond `options.max_items`.
        """
        ...

    async def storage_pop(self, skip_corrupt: bool) -> PopResult | None:
        """Remove and return the newest item; None when there is none.

        An item that is not a JSON object is skipped and left in place (`skip_corrupt`) or
        returned, not removed, with `corrupt=True`. Two concurrent pops never get the same
        item; a pop resent after a lost reply does not remove a second one.
        """
        ...

    async def storage_delete(self) -> bool:
        """Remove every item, the metadata and the index entries; True if it was live."""
        ...

    async def storage_replace(
        self,
        encoded: list[bytes],
        metadata: Mapping[str, str] | None,
        times: Times | None = None,
    ) -> None:
        """Replace the history (and, when given, the whole metadata) in one step.

        With `times` the session keeps those (created, updated) times instead of now.
        """
        ...

    async def storage_snapshot(self) -> Snapshot | None:
        """Every stored item and the metadata, read in one step; None when not live.

        Does not refresh the TTL.
        """
        ...

    async def storage_info(self) -> SessionInfo | None:
        """The session's `SessionInfo`, or None when it is not live."""
        ...

    async def storage_update_metadata(self, set_pairs: dict[str, str], remove: list[str]) -> None:
        """Merge `set_pairs` and drop the `remove` keys in one write.

        Removing keys only, from an absent session, creates nothing.
        """
        ...

    async def storage_touch(self) -> bool:
        """Set the expiry to now + `ttl` (or none); False when the session is not live."""
        ...

    async def storage_lock_acquire(self, token: str, lease_ms: int) -> bool:
        """Take the session's lock for `token` unless another token holds a live lease.

        Taking it again with the token that holds it succeeds (a resent request).
        """
        ...

    async def storage_lock_renew(self, token: str, lease_ms: int) -> bool:
        """Extend the lease to now + `lease_ms` if `token` holds it; False if it does not."""
        ...

    async def storage_lock_release(self, token: str) -> bool:
        """Release the lock if `token` holds it; False if it did not."""
        ...

    async def storage_close(self) -> None:
        """Release what this session owns (connections, clients); called once."""
        ...

    def sibling(self, session_id: str) -> SessionBackend:
        """A session of the same class, storage and options for another id (no I/O).

        Built by calling the class (`type(self)(...)`), so a subclass's `__init__` runs.
        """
        ...


@runtime_checkable
class StoreBackend(Protocol):
    """What a backend's store implements (the rest of `SessionStore` is `BaseStore`'s).

    `list_sessions` pages newest first by (update time, id), with a cursor from
    `turnstore.store.encode_cursor`; a filter on a key of `index_metadata` costs time in
    proportion to the page, not the store. `count_sessions` does not grow with the sessions.
    Every write removes a bounded number of expired sessions (or their index entries) on
    its way, so storage stays near the live sessions without `purge_expired()`.
    `delete_sessions` comes from `BaseStore` (through `list_sessions`) unless the backend
    has a faster way.
    """

    def session(self, session_id: str, **overrides: Any) -> SessionBackend:
        """A `BaseSession` subclass implementing `SessionBackend`, sharing the store's
        storage and defaults (`overrides` win, merged by `resolve_options`); no I/O."""
        ...

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

    async def purge_expired(self) -> int: ...

    async def count_expired(self) -> int:
        """How many sessions `purge_expired()` would remove now; changes nothing.

        `BaseStore.count_expired` raises `NotImplementedError`: a store that cannot tell
        without removing them keeps it (`purge --dry-run` then says so).
        """
        ...

    async def reindex(self, *, progress: Callable[[int], object] | None = None) -> int:
        """(Re)build the metadata index for the store's current `index_metadata`.

        Resumable: interrupted (a crash, `progress` raising), the next call continues where
        the last committed step ended. On a complete index it is cheap, changes nothing and
        returns 0. `progress(done)` is called after each step with the sessions indexed so
        far. Returns the number of live sessions this call indexed; afterwards a listing
        filtered on an indexed key finds the sessions written before the key was indexed.
        `BaseStore.reindex` serves a backend without an index.
        """
        ...

    async def ping(self) -> bool: ...

    async def snapshot_sessions(self, session_ids: Sequence[str]) -> list[SessionCopy | None]:
        """For each id, in order, its `SessionCopy`, or None when it is not live.

        Each session is read consistently (its items and metadata in one step); the TTL is
        not refreshed. `BaseStore` provides it on top of the session primitives, a bounded
        number of sessions at a time; a backend may override it to read many sessions in one
        round trip. Export and migrate read through it.
        """
        ...

    async def replace_sessions(self, writes: Sequence[SessionWrite]) -> None:
        """Make each written session hold exactly its write's items and metadata.

        Atomic per session, as `storage_replace` (a reader never sees a session half
        written), not across sessions: after a failure some writes may be applied, and
        applying a write again changes nothing more. `BaseStore` provides it on top of
        `storage_replace`; a backend may override it to write many sessions per round trip
        or transaction. Import and migrate write through it.
        """
        ...

    async def storage_close(self) -> None:
        """Close what the store owns; called once, by `close()`."""
        ...
