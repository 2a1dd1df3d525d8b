"""The in-process storage of `memory://`: sessions, batch tokens, locks and the listing index.

Every operation runs whole under one mutex (no awaits inside), so it is atomic between tasks
and between the threads of `Runner.run_sync`. Expired sessions stop being visible at their
deadline: a heap of deadlines moves them out of the index on the next operation; every write
forgets a few of them (`SWEEP_PER_WRITE`), and `purge()` forgets them all at once.

The metadata index has one sorted list per (key, value) of every key a store on this data
named in `index_metadata` (`register`). A key registered while sessions exist is complete
once `reindex()` ran; until then listings filtered on it walk the sessions in order.
"""

from __future__ import annotations

import heapq
import threading
import time
from bisect import bisect_left, insort
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from ..backend import PopResult, RawItem, Snapshot, Times
from ..errors import SessionClosedError
from ..info import SessionInfo, datetime_from_ms
from ..items import decode_item

__all__ = ["SWEEP_PER_WRITE", "MemoryConnection", "MemoryData", "now_ms"]

#: Expired sessions a write forgets on its way (bounded work per write).
SWEEP_PER_WRITE = 2


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class _Entry:
    items: list[bytes]
    metadata: dict[str, str]
    created_ms: int
    updated_ms: int
    expires_ms: int | None


@dataclass
class _Lock:
    token: str
    expires_ms: int


# A position in the listing order: newest last, ties broken by id (as the other backends).
_Key = tuple[int, str]


@dataclass
class MemoryData:
    """One store's worth of sessions (shared by every `MemoryStore` opened on its name)."""

    _indexed: dict[str, bool] = field(default_factory=dict)  # key -> index complete
    _sessions: dict[str, _Entry] = field(default_factory=dict)
    _tokens: dict[str, dict[str, int]] = field(default_factory=dict)
    _locks: dict[str, _Lock] = field(default_factory=dict)
    _order: list[_Key] = field(default_factory=list)
    _by_pair: dict[tuple[str, str], list[_Key]] = field(default_factory=dict)
    _deadlines: list[tuple[int, str]] = field(default_factory=list)
    _expired: set[str] = field(default_factory=set)
    _mutex: threading.Lock = field(default_factory=threading.Lock)

    # -- bookkeeping (called with the mutex held) ----------------------------------------

    def _sweep(self, now: int) -> None:
        """Hide every session whose deadline has passed (kept until `purge`)."""
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, session_id = heapq.heappop(self._deadlines)
            entry = self._sessions.get(session_id)
            if entry is None or entry.expires_ms != deadline or session_id in self._expired:
                continue  # a deadline that a later write moved
            self._unindex(session_id, entry)
            self._expired.add(session_id)
        if len(self._deadlines) > 2 * len(self._sessions) + 64:
            self._deadlines = [
                (e.expires_ms, sid)
                for sid, e in self._sessions.items()
                if e.expires_ms is not None and sid not in self._expired
            ]
            heapq.heapify(self._deadlines)

    def _clean(self, now: int) -> None:
        """Forget up to `SWEEP_PER_WRITE` expired sessions (their entry and lapsed tokens)."""
        self._sweep(now)
        for _ in range(min(SWEEP_PER_WRITE, len(self._expired))):
            session_id = self._expired.pop()
            del self._sessions[session_id]
            tokens = self._tokens.get(session_id)
            if tokens is not None:
                for token, until in list(tokens.items()):
                    if until <= now:
                        del tokens[token]
                if not tokens:
                    del self._tokens[session_id]

    def _live(self, session_id: str, now: int) -> _Entry | None:
        self._sweep(now)
        if session_id in self._expired:
            return None
        return self._sessions.get(session_id)

    def _pairs(self, entry: _Entry) -> Iterator[tuple[str, str]]:
        for key in self._indexed:
            value = entry.metadata.get(key)
            if value is not None:
                yield (key, value)

    def _unindex(self, session_id: str, entry: _Entry) -> None:
        position = (entry.updated_ms, session_id)
        # A pair may have no list yet: the session was written before its key was indexed.
        for keys in (self._order, *(self._by_pair.get(p, []) for p in self._pairs(entry))):
            at = bisect_left(keys, position)
            if at < len(keys) and keys[at] == position:
                del keys[at]

    def _index(self, session_id: str, entry: _Entry) -> None:
        position = (entry.updated_ms, session_id)
        insort(self._order, position)
        for pair in self._pairs(entry):
            insort(self._by_pair.setdefault(pair, []), position)

    def _forget(self, session_id: str) -> None:
        entry = self._sessions.pop(session_id, None)
        if entry is not None and session_id not in self._expired:
            self._unindex(session_id, entry)
        self._expired.discard(session_id)

    def _writable(self, session_id: str, now: int) -> _Entry | None:
        """The live entry about to be written, out of the index; None when absent."""
        self._clean(now)
        entry = self._live(session_id, now)
        if entry is None:
            self._forget(session_id)  # an expired session is written afresh
            return None
        self._unindex(session_id, entry)
        return entry

    def _written(
        self,
        session_id: str,
        entry: _Entry | None,
        now: int,
        ttl_ms: int | None,
        *,
        items: list[bytes] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> _Entry:
        if entry is None:
            entry = _Entry(items=[], metadata={}, created_ms=now, updated_ms=now, expires_ms=None)
            self._sessions[session_id] = entry
        if items is not None:
            entry.items = items
        if metadata is not None:
            entry.metadata = metadata
        entry.updated_ms = max(now, entry.updated_ms)
        self._set_expiry(session_id, entry, None if ttl_ms is None else now + ttl_ms)
        self._index(session_id, entry)
        return entry

    def _set_expiry(self, session_id: str, entry: _Entry, expires_ms: int | None) -> None:
        entry.expires_ms = expires_ms
        if expires_ms is not None:
            heapq.heappush(self._deadlines, (expires_ms, session_id))

    @staticmethod
    def _trim(entry: _Entry, max_items: int | None) -> None:
        if max_items is not None and len(entry.items) > max_items:
            del entry.items[: len(entry.items) - max_items]

    # -- the session primitives ----------------------------------------------------------

    def read(
        self, session_id: str, count: int | None, refresh_ms: int | None
    ) -> tuple[list[RawItem], int]:
        with self._mutex:
            now = now_ms()
            entry = self._live(session_id, now)
            if entry is None:
                return [], 0
            if refresh_ms is not None:
                self._set_expiry(session_id, entry, now + refresh_ms)
            raws: list[RawItem] = list(entry.items if count is None else entry.items[-count:])
            return raws, len(entry.items)

    def append(
        self,
        session_id: str,
        encoded: list[bytes],
        token: str,
        token_ttl_ms: int,
        ttl_ms: int | None,
        max_items: int | None,
    ) -> bool:
        with self._mutex:
            now = now_ms()
            tokens = self._tokens.setdefault(session_id, {})
            for seen, until in list(tokens.items()):
                if until <= now:
                    del tokens[seen]
            if token in tokens:
                return False
            tokens[token] = now + token_ttl_ms
            entry = self._writable(session_id, now)
            items = [*(entry.items if entry else ()), *encoded]
            entry = self._written(session_id, entry, now, ttl_ms, items=items)
            self._trim(entry, max_items)
            return True

    def pop(self, session_id: str, skip_corrupt: bool, ttl_ms: int | None) -> PopResult | None:
        with self._mutex:
            now = now_ms()
            self._clean(now)
            entry = self._live(session_id, now)
            if entry is None:
                return None
            for position in range(len(entry.items) - 1, -1, -1):
                raw = entry.items[position]
                try:
                    decode_item(raw)
                except (ValueError, TypeError):
                    if skip_corrupt:
                        continue  # left in place for inspection
                    return PopResult(raw=raw, position=position, corrupt=True)
                self._unindex(session_id, entry)
                del entry.items[position]
                self._written(session_id, entry, now, ttl_ms)
                return PopResult(raw=raw, position=position)
            return None

    def delete(self, session_id: str) -> bool:
        with self._mutex:
            now = now_ms()
            existed = self._live(session_id, now) is not None
            self._forget(session_id)
            self._clean(now)
            return existed

    def replace(
        self,
        session_id: str,
        encoded: list[bytes],
        metadata: Mapping[str, str] | None,
        times: Times | None,
        ttl_ms: int | None,
        max_items: int | None,
    ) -> None:
        with self._mutex:
            now = now_ms()
            entry = self._writable(session_id, now)
            entry = self._written(
                session_id,
                entry,
                now,
                ttl_ms,
                items=list(encoded),
                metadata=None if metadata is None else dict(metadata),
            )
            self._trim(entry, max_items)
            if times is not None:
                self._unindex(session_id, entry)
                entry.created_ms, entry.updated_ms = times
                self._index(session_id, entry)

    def snapshot(self, session_id: str) -> Snapshot | None:
        with self._mutex:
            entry = self._live(session_id, now_ms())
            if entry is None:
                return None
            return Snapshot(raws=list(entry.items), metadata=dict(entry.metadata))

    def info(self, session_id: str) -> SessionInfo | None:
        with self._mutex:
            entry = self._live(session_id, now_ms())
            return None if entry is None else self._info(session_id, entry)

    @staticmethod
    def _info(session_id: str, entry: _Entry) -> SessionInfo:
        return SessionInfo(
            session_id=session_id,
            created_at=datetime_from_ms(entry.created_ms),
            updated_at=datetime_from_ms(entry.updated_ms),
            item_count=len(entry.items),
            expires_at=None if entry.expires_ms is None else datetime_from_ms(entry.expires_ms),
            metadata=dict(entry.metadata),
        )

    def update_metadata(
        self, session_id: str, set_pairs: dict[str, str], remove: list[str], ttl_ms: int | None
    ) -> None:
        with self._mutex:
            now = now_ms()
            if self._live(session_id, now) is None and not set_pairs:
                return  # removing keys from an absent session creates nothing
            entry = self._writable(session_id, now)
            metadata = dict(entry.metadata) if entry else {}
            metadata.update(set_pairs)
            for key in remove:
                metadata.pop(key, None)
            self._written(session_id, entry, now, ttl_ms, metadata=metadata)

    def touch(self, session_id: str, ttl_ms: int | None) -> bool:
        with self._mutex:
            now = now_ms()
            self._clean(now)
            entry = self._live(session_id, now)
            if entry is None:
                return False
            self._set_expiry(session_id, entry, None if ttl_ms is None else now + ttl_ms)
            return True

    def lock_acquire(self, session_id: str, token: str, lease_ms: int) -> bool:
        with self._mutex:
            now = now_ms()
            held = self._locks.get(session_id)
            if held is not None and held.expires_ms > now and held.token != token:
                return False
            self._locks[session_id] = _Lock(token, now + lease_ms)
            return True

    def lock_renew(self, session_id: str, token: str, lease_ms: int) -> bool:
        with self._mutex:
            now = now_ms()
            held = self._locks.get(session_id)
            if held is None or held.token != token or held.expires_ms <= now:
                return False
            held.expires_ms = now + lease_ms
            return True

    def lock_release(self, session_id: str, token: str) -> bool:
        with self._mutex:
            held = self._locks.get(session_id)
            if held is None or held.token != token:
                return False
            del self._locks[session_id]
            return held.expires_ms > now_ms()

    # -- the store's operations ----------------------------------------------------------

    def page(
        self, limit: int, after: _Key | None, wanted: Mapping[str, str]
    ) -> tuple[list[SessionInfo], _Key | None]:
        """Up to `limit` live sessions before `after`, newest first, and the key of the last
        one when more follow."""
        with self._mutex:
            self._sweep(now_ms())
            indexed = [pair for pair in wanted.items() if self._indexed.get(pair[0])]
            # An indexed pair narrows the walk to its own sessions: the page costs its size.
            keys = self._by_pair.get(indexed[0], []) if indexed else self._order
            at = len(keys) if after is None else bisect_left(keys, after)
            found: list[SessionInfo] = []
            last: _Key | None = None
            while at > 0:
                at -= 1
                updated_ms, session_id = keys[at]
                entry = self._sessions[session_id]
                if any(entry.metadata.get(k) != v for k, v in wanted.items()):
                    continue
                if len(found) == limit:
                    return found, last
                found.append(self._info(session_id, entry))
                last = (updated_ms, session_id)
            return found, None

    def register(self, keys: tuple[str, ...]) -> None:
        """Index `keys` from now on; complete at once while no session is stored."""
        with self._mutex:
            for key in keys:
                self._indexed.setdefault(key, not self._sessions)

    def reindex(self) -> int | None:
        """Build the index of every incomplete key in one step; None when all were complete.

        Returns how many live sessions it indexed.
        """
        with self._mutex:
            pending = [key for key, complete in self._indexed.items() if not complete]
            if not pending:
                return None
            self._sweep(now_ms())
            for pair in [pair for pair in self._by_pair if pair[0] in pending]:
                del self._by_pair[pair]
            live = [(sid, e) for sid, e in self._sessions.items() if sid not in self._expired]
            for session_id, entry in live:
                for key in pending:
                    value = entry.metadata.get(key)
                    if value is not None:
                        self._by_pair.setdefault((key, value), []).append(
                            (entry.updated_ms, session_id)
                        )
            for key in pending:
                for pair, keys in self._by_pair.items():
                    if pair[0] == key:
                        keys.sort()
                self._indexed[key] = True
            return len(live)

    def count(self) -> int:
        with self._mutex:
            self._sweep(now_ms())
            return len(self._sessions) - len(self._expired)

    def count_expired(self) -> int:
        """Sessions past their deadline that `purge` would remove now (nothing changes)."""
        with self._mutex:
            self._sweep(now_ms())
            return len(self._expired)

    def purge(self) -> int:
        with self._mutex:
            now = now_ms()
            self._sweep(now)
            removed = len(self._expired)
            for session_id in list(self._expired):
                self._forget(session_id)
            for session_id, tokens in list(self._tokens.items()):
                for token, until in list(tokens.items()):
                    if until <= now:
                        del tokens[token]
                if not tokens:
                    del self._tokens[session_id]
            for session_id, held in list(self._locks.items()):
                if held.expires_ms <= now:
                    del self._locks[session_id]
            return removed


class MemoryConnection:
    """A store's (or a standalone session's) way to its `MemoryData`, closed with its owner."""

    def __init__(self, data: MemoryData, owner: str) -> None:
        self.data = data
        self._owner = owner
        self._closed = False

    def get(self) -> MemoryData:
        if self._closed:
            raise SessionClosedError(f"{self._owner} is closed")
        return self.data

    def close(self) -> None:
        self._closed = True
