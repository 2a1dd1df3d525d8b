"""Whole sessions as portable records: read one out of any store, write one into any store.

The building blocks of the CLI's `export`, `import` and `migrate`, usable from code as well:

```python
record = await export_session(source, "s1")          # None when "s1" does not exist
outcome = await import_session(destination, record)  # "created", "replaced", "unchanged"...
records = await export_sessions(source, ["s1", "s2"])     # many at once: one round trip
outcomes = await import_sessions(destination, [r for r in records if r is not None])
```

`import_session` is idempotent: it compares the destination's items and metadata with the
record's and writes only when they differ, replacing both in one atomic step (the backend's
`replace_items` path), so a session is never seen half copied and never copied twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from .backend import RawItem, SessionCopy, SessionWrite, Times
from .errors import ConfigurationError, InvalidItemError
from .items import decode_item, decode_items_fast, encode_items, orjson_module
from .options import SessionOptions, validate_session_id
from .store import SessionStore

_orjson = orjson_module()

__all__ = [
    "CorruptItem",
    "ImportOutcome",
    "ImportResult",
    "SessionRecord",
    "content_digest",
    "decode_record_items",
    "export_session",
    "export_sessions",
    "import_session",
    "import_sessions",
]

#: What `import_session` did: wrote a new session, replaced a different one, found the same
#: content already there, or skipped a record whose expiry time has passed.
ImportOutcome = Literal["created", "replaced", "unchanged", "expired"]


@dataclass(frozen=True)
class CorruptItem:
    """A stored item that cannot be decoded: where it is and why."""

    session_id: str
    position: int  # 0 = the oldest stored item
    reason: str


@dataclass(frozen=True)
class SessionRecord:
    """One session's whole content. Times are timezone-aware UTC (None when unknown)."""

    session_id: str
    items: list[dict[str, Any]]
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None
    #: Stored items that could not be decoded; they are not in `items`.
    corrupt: tuple[CorruptItem, ...] = ()
    #: Bytes of the stored items as the source holds them (0 when not read from storage).
    stored_bytes: int = 0

    def digest(self) -> str:
        """`content_digest` of the items and metadata."""
        return content_digest(self.items, self.metadata)


def _canonical(value: Any) -> bytes:
    # Sorted keys, compact: two JSON-equal values always give the same bytes. orjson (the
    # `fast` extra) is several times quicker; a value it refuses (an int beyond 64 bits, a
    # lone surrogate) goes through the standard library, whose output for it (ASCII escapes,
    # digits orjson never writes) no other value's orjson output can equal.
    if _orjson is not None:
        try:
            return bytes(_orjson.dumps(value, option=_orjson.OPT_SORT_KEYS))
        except (TypeError, _orjson.JSONEncodeError):
            pass
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def content_digest(items: Sequence[Any], metadata: Mapping[str, str]) -> str:
    """A SHA-256 hex digest of items (in order) and metadata, equal iff they are JSON-equal.

    Independent of how a backend formats the stored JSON (spacing, key order, escapes).
    Compare digests made by one installation: with and without the `fast` extra the same
    content has different (each canonical) digests.
    """
    digest = hashlib.sha256()
    digest.update(_canonical(dict(metadata)))
    for item in items:
        digest.update(b"\n")
        digest.update(_canonical(item))
    return digest.hexdigest()


def decode_record_items(
    session_id: str, raws: Sequence[RawItem]
) -> tuple[list[dict[str, Any]], tuple[CorruptItem, ...]]:
    """Decode stored items; undecodable ones are returned as `CorruptItem`s, not dropped."""
    fast = decode_items_fast(raws)
    if fast is not None:
        return fast, ()
    items: list[dict[str, Any]] = []
    corrupt: list[CorruptItem] = []
    for position, raw in enumerate(raws):
        try:
            items.append(decode_item(raw))
        except (ValueError, TypeError) as exc:
            corrupt.append(CorruptItem(session_id, position, str(exc)))
    return items, tuple(corrupt)


def _raw_size(raw: RawItem) -> int:
    return len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))


def _record_of(session_id: str, copy: SessionCopy) -> SessionRecord:
    items, corrupt = decode_record_items(session_id, copy.raws)
    info = copy.info
    return SessionRecord(
        session_id=session_id,
        items=items,
        metadata=dict(info.metadata),
        created_at=info.created_at,
        updated_at=info.updated_at,
        expires_at=info.expires_at,
        corrupt=corrupt,
        stored_bytes=sum(_raw_size(raw) for raw in copy.raws),
    )


async def export_sessions(
    store: SessionStore, session_ids: Sequence[str]
) -> list[SessionRecord | None]:
    """`export_session` of many sessions, in order, read together (`store.snapshot_sessions`:
    a backend may read them all in one round trip). Each is read in one atomic step."""
    copies = await store.snapshot_sessions(session_ids)
    return [
        None if copy is None else _record_of(session_id, copy)
        for session_id, copy in zip(session_ids, copies, strict=True)
    ]


async def export_session(store: SessionStore, session_id: str) -> SessionRecord | None:
    """The session's whole content, or None when it does not exist (or has expired).

    Items and metadata are read in one atomic step; items that cannot be decoded are listed
    in `corrupt` (and stay in storage). Reading does not refresh the session's TTL.
    """
    (record,) = await export_sessions(store, [session_id])
    return record


def _checked_metadata(metadata: Mapping[str, Any]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            raise InvalidItemError(f"metadata keys must be non-empty str, not {key!r}")
        if not isinstance(value, str):
            raise InvalidItemError(
                f"metadata value for {key!r} must be a str, not {type(value).__name__}"
            )
        try:
            key.encode("utf-8")
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidItemError("metadata must be valid Unicode (no lone surrogates)") from None
        checked[key] = value
    return checked


#: What `import_sessions` answers for each record: an outcome, or the error that refused it.
ImportResult = ImportOutcome | InvalidItemError | ConfigurationError


@dataclass(frozen=True)
class _Prepared:
    position: int
    record: SessionRecord
    write: SessionWrite


def _prepare(
    store: SessionStore, record: SessionRecord, position: int, now: datetime
) -> _Prepared | ImportOutcome:
    ttl: float | None = None
    if record.expires_at is not None:
        ttl = (record.expires_at - now).total_seconds()
        if ttl * 1000 < 1:
            return "expired"
    defaults = getattr(store, "options", None)
    if isinstance(defaults, SessionOptions):
        # The store's own limits, without building a session per record (which shows at
        # thousands of records a second); the store checks the id again when it writes.
        validate_session_id(record.session_id)
        if record.items is None:
            raise InvalidItemError("items must be a list of dicts, not None")
        encoded = encode_items(record.items, max_item_bytes=defaults.max_item_bytes)
    else:  # a store without `options`: its session validates and encodes
        session = store.session(record.session_id, **({} if ttl is None else {"ttl": ttl}))
        encoded = session.encode(record.items)
    metadata = _checked_metadata(record.metadata)
    times: Times | None = None
    if record.created_at is not None:
        created_ms = round(record.created_at.timestamp() * 1000)
        updated = record.updated_at or record.created_at
        times = (created_ms, max(created_ms, round(updated.timestamp() * 1000)))
    write = SessionWrite(record.session_id, encoded, metadata, times, ttl)
    return _Prepared(position, record, write)


def _as_bytes(raw: RawItem) -> bytes:
    return raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")


def _holds(copy: SessionCopy, prepared: _Prepared) -> bool:
    """True when the stored session already holds the record's content (JSON-equal)."""
    write = prepared.write
    if copy.info.metadata != write.metadata or len(copy.raws) != len(write.encoded):
        return False
    if all(_as_bytes(raw) == mine for raw, mine in zip(copy.raws, write.encoded, strict=True)):
        return True  # the very bytes this import would write
    stored, corrupt = decode_record_items(prepared.record.session_id, copy.raws)
    return not corrupt and content_digest(stored, write.metadata) == prepared.record.digest()


async def import_sessions(
    store: SessionStore,
    records: Sequence[SessionRecord],
    *,
    now: datetime | None = None,
    dry_run: bool = False,
) -> list[ImportResult]:
    """`import_session` of many records, in order: one outcome per record, or, in its place,
    the `InvalidItemError` or `ConfigurationError` that refused it (nothing of a refused
    record is written).

    The destination is read (`store.snapshot_sessions`) and written
    (`store.replace_sessions`) for all of them together, so a backend may do each in one
    round trip; every session is still replaced in one atomic step of its own. Records must
    name distinct sessions. `dry_run=True` validates and compares exactly as an import
    does and returns the same outcomes, but writes nothing (a read-only store will do).
    """
    now = now or datetime.now(timezone.utc)
    results: list[ImportResult | None] = [None] * len(records)
    prepared: list[_Prepared] = []
    for position, record in enumerate(records):
        try:
            outcome = _prepare(store, record, position, now)
        except (InvalidItemError, ConfigurationError) as exc:
            results[position] = exc
            continue
        if isinstance(outcome, _Prepared):
            prepared.append(outcome)
        else:
            results[position] = outcome
    if prepared:
        existing = await store.snapshot_sessions([p.record.session_id for p in prepared])
        writes: list[SessionWrite] = []
        for entry, copy in zip(prepared, existing, strict=True):
            if copy is not None and _holds(copy, entry):
                results[entry.position] = "unchanged"
                continue
            writes.append(entry.write)
            results[entry.position] = "created" if copy is None else "replaced"
        if writes and not dry_run:
            await store.replace_sessions(writes)
    return [result for result in results if result is not None]


async def import_session(
    store: SessionStore, record: SessionRecord, *, now: datetime | None = None
) -> ImportOutcome:
    """Make the store's session `record.session_id` hold exactly the record's content.

    Nothing is written when the store already holds JSON-equal items and the same metadata
    ("unchanged"); otherwise items and metadata are replaced in one atomic step. The record
    is validated first (`InvalidItemError`, `ConfigurationError` for a bad id): a refused
    record writes nothing. A record with an `expires_at` keeps that deadline; one whose
    deadline has passed is not written ("expired"); without one, the store's `ttl` applies.
    The record's creation and update times are kept when it has them.
    """
    (result,) = await import_sessions(store, [record], now=now)
    if isinstance(result, (InvalidItemError, ConfigurationError)):
        raise result
    return result
