"""Whole sessions as portable records: read one out of any store, write one into any store.

The building blocks of the CLI's `export`, `import` and `migrate`, usable from code as well:

```python
record = await export_session(source, "s1")          # None when "s1" does not exist
outcome = await import_session(destination, record)  # "created", "replaced", "unchanged"...
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

from .backend import RawItem, Times
from .errors import InvalidItemError
from .info import SessionInfo
from .items import decode_item, decode_items_fast
from .session import BaseSession
from .store import SessionStore

__all__ = [
    "CorruptItem",
    "ImportOutcome",
    "SessionRecord",
    "content_digest",
    "decode_record_items",
    "export_session",
    "import_session",
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
    # Sorted keys and ASCII escapes: two JSON-equal values always give the same bytes.
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def content_digest(items: Sequence[Any], metadata: Mapping[str, str]) -> str:
    """A SHA-256 hex digest of items (in order) and metadata, equal iff they are JSON-equal.

    Independent of how a backend formats the stored JSON (spacing, key order, escapes).
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


def _quiet_session(store: SessionStore, session_id: str, **overrides: Any) -> BaseSession:
    # No window, no limit and no sliding expiry: a copy must see, and change, nothing else.
    return store.session(
        session_id,
        max_turns=None,
        session_settings=None,
        refresh_ttl_on_read=False,
        **overrides,
    )


async def export_session(store: SessionStore, session_id: str) -> SessionRecord | None:
    """The session's whole content, or None when it does not exist (or has expired).

    Items and metadata are read in one atomic step; items that cannot be decoded are listed
    in `corrupt` (and stay in storage). Reading does not refresh the session's TTL.
    """
    session = _quiet_session(store, session_id)
    info: SessionInfo | None = await session.get_info()
    if info is None:
        return None
    snapshot = await session.storage_snapshot()
    if snapshot is None:  # deleted between the two reads
        return None
    items, corrupt = decode_record_items(session_id, snapshot.raws)
    return SessionRecord(
        session_id=session_id,
        items=items,
        metadata=dict(snapshot.metadata),
        created_at=info.created_at,
        updated_at=info.updated_at,
        expires_at=info.expires_at,
        corrupt=corrupt,
        stored_bytes=sum(_raw_size(raw) for raw in snapshot.raws),
    )


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
    overrides: dict[str, Any] = {}
    if record.expires_at is not None:
        remaining = (record.expires_at - (now or datetime.now(timezone.utc))).total_seconds()
        if remaining * 1000 < 1:
            return "expired"
        overrides["ttl"] = remaining
    session = _quiet_session(store, record.session_id, **overrides)
    encoded = session.encode(record.items)
    metadata = _checked_metadata(record.metadata)
    snapshot = await session.storage_snapshot()
    if snapshot is not None and snapshot.metadata == metadata:
        stored, corrupt = decode_record_items(record.session_id, snapshot.raws)
        if not corrupt and content_digest(stored, metadata) == record.digest():
            return "unchanged"
    times: Times | None = None
    if record.created_at is not None:
        created_ms = round(record.created_at.timestamp() * 1000)
        updated = record.updated_at or record.created_at
        times = (created_ms, max(created_ms, round(updated.timestamp() * 1000)))
    await session.storage_replace(encoded, metadata, times)
    return "created" if snapshot is None else "replaced"
