"""Behaviour every backend shares, written once.

`BaseSession` implements the public session contract (limit resolution, turn windows,
validation, corrupt-item policy, fork, the closed state) on top of a handful of storage
primitives that a backend provides. A backend never validates, decodes or windows by itself.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Generator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    from agents.memory.session_settings import SessionSettings

from .backend import (
    AUTO_TOKEN_TTL_MS,
    IDEMPOTENCY_TTL_MS,
    PopResult,
    RawItem,
    Snapshot,
    Times,
    batch_token,
)
from .errors import ConfigurationError, CorruptItemError, InvalidItemError, SessionClosedError
from .info import SessionInfo
from .items import decode_item, decode_items_fast, encode_items
from .lock import SessionLock
from .options import SessionOptions, validate_session_id
from .window import first_turns_end, last_turns_start

__all__ = ["BaseSession"]

logger = logging.getLogger("turnstore")

_S = TypeVar("_S", bound="BaseSession")


class _Done:
    """An already-finished awaitable: lets a synchronous `close()` be awaited as well."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # pragma: no cover - makes this a generator


#: `session_settings` not given: `SessionSettings()`, made when first read (its limit is None).
_DEFAULT_SETTINGS: Any = object()


class BaseSession(ABC):
    """A conversation session (structural `agents.memory.Session`) over some storage."""

    #: Name used in messages ("RedisSession is closed").
    kind: ClassVar[str] = "Session"

    session_id: str

    def __init__(self, session_id: str, options: SessionOptions) -> None:
        self.session_id = validate_session_id(session_id)
        self._options = options
        settings = options.session_settings
        # As the SDK's own sessions do: omitted gives SessionSettings(), a mapping is coerced
        # (an unknown field raises the SDK's TypeError). The default is made on first use, so
        # code that never looks at it (the CLI) never imports the SDK.
        self._session_settings: Any = _DEFAULT_SETTINGS
        if settings is not None:
            from agents.memory.session_settings import coerce_session_settings

            self._session_settings = coerce_session_settings(settings)
        self._closed = False

    @property
    def session_settings(self) -> SessionSettings | None:
        """As in the SDK's sessions: `SessionSettings()` unless given."""
        if self._session_settings is _DEFAULT_SETTINGS:
            from agents.memory.session_settings import SessionSettings

            self._session_settings = SessionSettings()
        settings: SessionSettings | None = self._session_settings
        return settings

    @session_settings.setter
    def session_settings(self, value: SessionSettings | None) -> None:
        self._session_settings = value

    # -- options ---------------------------------------------------------------------------

    @property
    def options(self) -> SessionOptions:
        return self._options

    @property
    def ttl(self) -> float | None:
        return self._options.ttl

    @property
    def max_turns(self) -> int | None:
        return self._options.max_turns

    @property
    def max_items(self) -> int | None:
        return self._options.max_items

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise SessionClosedError(f"{self.kind} is closed")

    # -- storage primitives a backend provides (documented in turnstore.backend) ------------

    @abstractmethod
    async def storage_read(self, count: int | None) -> tuple[list[RawItem], int]:
        """The newest `count` stored items (all when None), oldest first, and the total."""

    @abstractmethod
    async def storage_append(self, encoded: list[bytes], token: str, token_ttl_ms: int) -> bool:
        """Append atomically unless `token` was seen; False when it was (nothing written)."""

    @abstractmethod
    async def storage_pop(self, skip_corrupt: bool) -> PopResult | None:
        """Remove and return the newest decodable item (or stop at a corrupt one)."""

    @abstractmethod
    async def storage_delete(self) -> bool:
        """Remove every item, the metadata and the index entries; True if it was live."""

    @abstractmethod
    async def storage_replace(
        self,
        encoded: list[bytes],
        metadata: Mapping[str, str] | None,
        times: Times | None = None,
    ) -> None:
        """Replace the history (and, when given, the whole metadata) atomically."""

    @abstractmethod
    async def storage_snapshot(self) -> Snapshot | None:
        """Every stored item and the metadata, read atomically; None if absent."""

    @abstractmethod
    async def storage_info(self) -> SessionInfo | None:
        """The session's `SessionInfo`, or None when it does not exist."""

    @abstractmethod
    async def storage_update_metadata(self, set_pairs: dict[str, str], remove: list[str]) -> None:
        """Merge metadata pairs and drop keys, as one write."""

    @abstractmethod
    async def storage_touch(self) -> bool:
        """Refresh the TTL; False when the session does not exist."""

    @abstractmethod
    async def storage_lock_acquire(self, token: str, lease_ms: int) -> bool:
        """Take the session's lock for `token` unless someone holds a live lease."""

    @abstractmethod
    async def storage_lock_renew(self, token: str, lease_ms: int) -> bool:
        """Extend the lease if `token` still holds the lock; False if it does not."""

    @abstractmethod
    async def storage_lock_release(self, token: str) -> bool:
        """Release the lock if `token` holds it; False if it did not."""

    @abstractmethod
    async def storage_close(self) -> None:
        """Release what this session owns (connections, clients)."""

    @abstractmethod
    def sibling(self: _S, session_id: str) -> _S:
        """A session of the same class, storage and options for another id (no I/O)."""

    # -- the public contract ---------------------------------------------------------------

    def _decode_one(self, raw: RawItem, position: int) -> Any | None:
        """One stored item, or None when it is corrupt and `on_corrupt="skip"` (logged)."""
        try:
            return decode_item(raw)
        except (ValueError, TypeError) as exc:
            if self._options.on_corrupt == "raise":
                raise CorruptItemError(self.session_id, position, str(exc)) from None
            logger.warning(
                "session %r: skipping undecodable stored item at position %d (%s); "
                "it stays in storage",
                self.session_id,
                position,
                exc,
            )
            return None

    def _decode(self, raws: Sequence[RawItem], first_position: int) -> tuple[list[Any], int]:
        """Decode stored items; returns (items, how many corrupt ones were skipped)."""
        fast = decode_items_fast(raws) if len(raws) > 8 else None
        if fast is not None:
            return fast, 0
        items: list[Any] = []
        for offset, raw in enumerate(raws):
            item = self._decode_one(raw, first_position + offset)
            if item is not None:
                items.append(item)
        return items, len(raws) - len(items)

    async def get_items(self, limit: int | None = None) -> list[Any]:
        """The latest `limit` items, oldest first.

        `limit=None` uses `session_settings.limit`, else the `max_turns` window, else all
        items. `limit <= 0` returns `[]`. Corrupt items are skipped (and not counted) or
        raise `CorruptItemError`, as `on_corrupt` says.
        """
        self._check_open()
        settings = self._session_settings
        if limit is None and settings is not None and settings is not _DEFAULT_SETTINGS:
            limit = settings.limit
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int):
                raise ConfigurationError(f"limit must be an int or None, not {limit!r}")
            if limit <= 0:
                return []
            return await self._read_last(limit)
        if self._options.max_turns is not None:
            return await self._read_turns(self._options.max_turns)
        raws, total = await self.storage_read(None)
        items, _ = self._decode(raws, total - len(raws))
        return items

    async def _read_last(self, limit: int) -> list[Any]:
        count = limit
        while True:
            raws, total = await self.storage_read(count)
            items, _ = self._decode(raws, total - len(raws))
            if len(items) >= limit or len(raws) >= total:
                return items[-limit:]
            # Corrupt items were skipped: a limit counts valid items, so read further back.
            count = min(total, count * 2)

    async def _read_turns(self, turns: int) -> list[Any]:
        count = max(64, 16 * turns)
        while True:
            raws, total = await self.storage_read(count)
            items, _ = self._decode(raws, total - len(raws))
            start = last_turns_start(items, turns)
            if start is not None:
                return items[start:]
            if len(raws) >= total:
                return items  # fewer turns than the window: the whole history
            count = min(total, count * 4)

    def encode(self, items: Any) -> list[bytes]:
        """Validate a batch and encode it as this session stores it (`InvalidItemError`)."""
        if items is None:
            raise InvalidItemError("items must be a list of dicts, not None")
        return encode_items(items, max_item_bytes=self._options.max_item_bytes)

    async def add_items(self, items: list[Any], *, idempotency_key: str | None = None) -> None:
        """Append one batch atomically: readers never see part of it, batches never interleave.

        Every call carries a fresh batch token, so a retry of the same call after a lost
        reply is not applied twice. A repeated `idempotency_key` is a no-op for at least 24 h
        (or the TTL, if longer). The whole batch is validated before anything is written.
        """
        self._check_open()
        if idempotency_key is not None and (
            not isinstance(idempotency_key, str) or not idempotency_key
        ):
            raise ConfigurationError("idempotency_key must be a non-empty str or None")
        encoded = self.encode(items)
        if not encoded:
            return
        if idempotency_key is None:
            token = batch_token()
            token_ttl_ms = AUTO_TOKEN_TTL_MS
        else:
            token = "k:" + idempotency_key
            token_ttl_ms = max(IDEMPOTENCY_TTL_MS, self._options.ttl_ms or 0)
        await self.storage_append(encoded, token, token_ttl_ms)

    async def pop_item(self) -> Any | None:
        """Remove and return the newest item; None when there is none.

        Concurrent pops never return the same item.
        """
        self._check_open()
        skip = self._options.on_corrupt == "skip"
        while True:
            result = await self.storage_pop(skip_corrupt=skip)
            if result is None:
                return None
            if result.corrupt:
                raise CorruptItemError(self.session_id, result.position, "not a JSON object")
            try:
                return decode_item(result.raw)
            except (ValueError, TypeError) as exc:
                # The backend judged it decodable but Python does not: it is gone from
                # storage now, so report it rather than lose it silently.
                if not skip:
                    raise CorruptItemError(self.session_id, result.position, str(exc)) from None
                logger.warning(
                    "session %r: popped undecodable item at position %d (%s): %r",
                    self.session_id,
                    result.position,
                    exc,
                    result.raw[:200],
                )

    async def clear_session(self) -> None:
        """Remove every item, the metadata and the index entries of the session, atomically."""
        self._check_open()
        await self.storage_delete()

    async def replace_items(self, items: list[Any]) -> None:
        """Replace the whole history atomically (compaction, editing)."""
        self._check_open()
        await self.storage_replace(self.encode(items), None)

    async def get_info(self) -> SessionInfo | None:
        """A `SessionInfo`, or None when the session does not exist (or has expired)."""
        self._check_open()
        return await self.storage_info()

    async def update_metadata(self, mapping: Mapping[str, str | None]) -> None:
        """Merge `str -> str` pairs into the metadata; a value of None removes that key."""
        self._check_open()
        if not isinstance(mapping, Mapping):
            raise InvalidItemError(f"metadata must be a mapping, not {type(mapping).__name__}")
        set_pairs: dict[str, str] = {}
        remove: list[str] = []
        for key, value in mapping.items():
            if not isinstance(key, str) or not key:
                raise InvalidItemError(f"metadata keys must be non-empty str, not {key!r}")
            if value is None:
                remove.append(key)
            elif isinstance(value, str):
                set_pairs[key] = value
            else:
                raise InvalidItemError(
                    f"metadata value for {key!r} must be a str or None, not {type(value).__name__}"
                )
        for text in (*set_pairs, *set_pairs.values(), *remove):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidItemError("metadata must be valid Unicode") from None
        if set_pairs or remove:
            await self.storage_update_metadata(set_pairs, remove)

    async def fork(self: _S, new_session_id: str, *, upto_turn: int | None = None) -> _S:
        """A new session (same backend and options) holding a copy of this history.

        With `upto_turn=N` only the first N turns are copied. Metadata is copied too. The
        copy is written atomically; whatever `new_session_id` held before is replaced.
        """
        self._check_open()
        validate_session_id(new_session_id)
        if upto_turn is not None and (
            isinstance(upto_turn, bool) or not isinstance(upto_turn, int) or upto_turn < 0
        ):
            raise ConfigurationError(f"upto_turn must be a non-negative int, not {upto_turn!r}")
        if new_session_id == self.session_id:
            raise ConfigurationError("fork needs a session id different from the source's")
        snapshot = await self.storage_snapshot()
        raws = snapshot.raws if snapshot else []
        metadata = snapshot.metadata if snapshot else {}
        # Keep the stored bytes of every valid item rather than re-encoding them.
        items: list[Any] = []
        valid_raws: list[bytes] = []
        for position, raw in enumerate(raws):
            item = self._decode_one(raw, position)
            if item is not None:
                items.append(item)
                valid_raws.append(raw if isinstance(raw, bytes) else raw.encode())
        if upto_turn is not None:
            valid_raws = valid_raws[: first_turns_end(items, upto_turn)]
        target = self.sibling(new_session_id)
        await target.storage_replace(valid_raws, metadata)
        return target

    def lock(self, *, timeout: float = 10.0, lease: float = 30.0) -> SessionLock:
        """A lock on this session shared by every process that uses the same storage.

        `async with session.lock(): await Runner.run(agent, text, session=session)` runs one
        turn at a time across workers. Raises `LockTimeoutError` after `timeout` seconds; the
        lease is renewed while held and lapses by itself if the holder dies.
        """
        self._check_open()
        return SessionLock(
            self.session_id,
            acquire=self.storage_lock_acquire,
            renew=self.storage_lock_renew,
            release=self.storage_lock_release,
            timeout=timeout,
            lease=lease,
        )

    async def touch(self) -> bool:
        """Refresh the TTL; returns False when the session does not exist."""
        self._check_open()
        return await self.storage_touch()

    def close(self) -> Awaitable[None]:
        """Release what the session owns; every later call raises `SessionClosedError`."""
        return self._close_async()

    async def _close_async(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.storage_close()

    @staticmethod
    def _done() -> Awaitable[None]:
        return _Done()

    async def __aenter__(self: _S) -> _S:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
