"""turnstore_toy: a third-party backend for `toy://NAME` URLs, written on the public protocol.

It keeps sessions in plain dicts (shared by every store of this process opened on the same
NAME) and lists by sorting them all: small and slow on purpose. What it shows is that a
backend needs only `turnstore.backend`, `BaseSession` and `BaseStore` to pass the suite.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from turnstore import BaseSession, BaseStore, SessionClosedError, SessionInfo, SessionPage
from turnstore.backend import PopResult, RawItem, Snapshot, Times, validate_index_metadata
from turnstore.options import SessionOptions, resolve_options
from turnstore.store import decode_cursor, encode_cursor

_SPACES: dict[str, dict[str, Any]] = {}


def _now() -> int:
    return time.time_ns() // 1_000_000


def _at(ms: int) -> Any:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def _space(name: str) -> dict[str, Any]:
    return _SPACES.setdefault(name, {"sessions": {}, "tokens": {}, "locks": {}, "indexed": {}})


class ToySession(BaseSession):
    kind = "ToySession"

    def __init__(
        self,
        session_id: str,
        *,
        space: str = "default",
        store: ToyStore | None = None,
        **options: Any,
    ) -> None:
        session_options, _ = resolve_options([options])
        super().__init__(session_id, session_options)
        self.space = space
        self.store = store
        self._space = _space(space)

    @property
    def _data(self) -> dict[str, Any]:
        if self.store is not None and self.store.closed:
            raise SessionClosedError("ToyStore is closed")
        return self._space

    # -- helpers --------------------------------------------------------------------------

    def _live(self) -> dict[str, Any] | None:
        entry = self._data["sessions"].get(self.session_id)
        if entry is not None and entry["expires"] is not None and entry["expires"] <= _now():
            del self._data["sessions"][self.session_id]
            return None
        return entry

    def _write(self) -> dict[str, Any]:
        now = _now()
        entry = self._live()
        if entry is None:
            entry = {"items": [], "meta": {}, "created": now, "updated": now, "expires": None}
            self._data["sessions"][self.session_id] = entry
        entry["updated"] = max(now, entry["updated"])
        ttl_ms = self.options.ttl_ms
        entry["expires"] = None if ttl_ms is None else now + ttl_ms
        return entry

    def _trim(self, entry: dict[str, Any]) -> None:
        cap = self.options.max_items
        if cap is not None:
            del entry["items"][: max(0, len(entry["items"]) - cap)]

    # -- the protocol ---------------------------------------------------------------------

    async def storage_read(self, count: int | None) -> tuple[list[RawItem], int]:
        entry = self._live()
        if entry is None:
            return [], 0
        if self.options.refresh_ttl_on_read and self.options.ttl_ms is not None:
            entry["expires"] = _now() + self.options.ttl_ms
        items = entry["items"]
        return list(items if count is None else items[-count:]), len(items)

    async def storage_append(self, encoded: list[bytes], token: str, token_ttl_ms: int) -> bool:
        tokens = self._data["tokens"].setdefault(self.session_id, {})
        if tokens.get(token, 0) > _now():
            return False
        tokens[token] = _now() + token_ttl_ms
        entry = self._write()
        entry["items"].extend(encoded)
        self._trim(entry)
        return True

    async def storage_pop(self, skip_corrupt: bool) -> PopResult | None:
        entry = self._live()
        if entry is None:
            return None
        for position in range(len(entry["items"]) - 1, -1, -1):
            raw = entry["items"][position]
            try:
                is_object = isinstance(json.loads(raw), dict)
            except ValueError:
                is_object = False
            if not is_object:
                if skip_corrupt:
                    continue
                return PopResult(raw=raw, position=position, corrupt=True)
            del entry["items"][position]
            self._write()
            return PopResult(raw=raw, position=position)
        return None

    async def storage_delete(self) -> bool:
        existed = self._live() is not None
        self._data["sessions"].pop(self.session_id, None)
        return existed

    async def storage_replace(
        self,
        encoded: list[bytes],
        metadata: Mapping[str, str] | None,
        times: Times | None = None,
    ) -> None:
        entry = self._write()
        entry["items"] = list(encoded)
        if metadata is not None:
            entry["meta"] = dict(metadata)
        self._trim(entry)
        if times is not None:
            entry["created"], entry["updated"] = times

    async def storage_snapshot(self) -> Snapshot | None:
        entry = self._live()
        if entry is None:
            return None
        return Snapshot(raws=list(entry["items"]), metadata=dict(entry["meta"]))

    async def storage_info(self) -> SessionInfo | None:
        entry = self._live()
        return None if entry is None else info_of(self.session_id, entry)

    async def storage_update_metadata(self, set_pairs: dict[str, str], remove: list[str]) -> None:
        if self._live() is None and not set_pairs:
            return
        entry = self._write()
        entry["meta"].update(set_pairs)
        for key in remove:
            entry["meta"].pop(key, None)

    async def storage_touch(self) -> bool:
        entry = self._live()
        if entry is None:
            return False
        ttl_ms = self.options.ttl_ms
        entry["expires"] = None if ttl_ms is None else _now() + ttl_ms
        return True

    async def storage_lock_acquire(self, token: str, lease_ms: int) -> bool:
        held = self._data["locks"].get(self.session_id)
        if held is not None and held[0] != token and held[1] > _now():
            return False
        self._data["locks"][self.session_id] = (token, _now() + lease_ms)
        return True

    async def storage_lock_renew(self, token: str, lease_ms: int) -> bool:
        held = self._data["locks"].get(self.session_id)
        if held is None or held[0] != token or held[1] <= _now():
            return False
        self._data["locks"][self.session_id] = (token, _now() + lease_ms)
        return True

    async def storage_lock_release(self, token: str) -> bool:
        held = self._data["locks"].get(self.session_id)
        if held is None or held[0] != token:
            return False
        del self._data["locks"][self.session_id]
        return bool(held[1] > _now())

    async def storage_close(self) -> None:
        pass

    def sibling(self, session_id: str) -> ToySession:
        return type(self)(session_id, space=self.space, store=self.store, **self.options.keywords())


def info_of(session_id: str, entry: dict[str, Any]) -> SessionInfo:
    return SessionInfo(
        session_id=session_id,
        created_at=_at(entry["created"]),
        updated_at=_at(entry["updated"]),
        item_count=len(entry["items"]),
        expires_at=None if entry["expires"] is None else _at(entry["expires"]),
        metadata=dict(entry["meta"]),
    )


class ToyStore(BaseStore):
    kind = "ToyStore"

    def __init__(self, space: str, options: SessionOptions, index_metadata: Any = ()) -> None:
        super().__init__()
        self.space = space
        self.options = options
        # It lists by scanning, so an "index" is only a promise kept by `reindex`: a key named
        # while sessions exist counts as built once `reindex` went through them.
        self.index_metadata = validate_index_metadata(index_metadata)
        stored = _space(space)
        for key in self.index_metadata:
            stored["indexed"].setdefault(key, not stored["sessions"])

    async def reindex(self, *, progress: Any = None) -> int:
        self._check_open()
        indexed = _space(self.space)["indexed"]
        if all(indexed.values()):
            return 0
        done = len(self._live())
        for key in indexed:
            indexed[key] = True
        if progress is not None:
            progress(done)
        return done

    def session(self, session_id: str, **overrides: Any) -> ToySession:
        self._check_open()
        options, _ = resolve_options([overrides], base=self.options)
        return ToySession(session_id, space=self.space, store=self, **options.keywords())

    def _live(self) -> list[tuple[str, dict[str, Any]]]:
        now = _now()
        return [
            (sid, entry)
            for sid, entry in _space(self.space)["sessions"].items()
            if entry["expires"] is None or entry["expires"] > now
        ]

    async def get_info(self, session_id: str) -> SessionInfo | None:
        self._check_open()
        return await self.session(session_id).get_info()

    async def list_sessions(
        self,
        *,
        limit: int = 100,
        cursor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> SessionPage:
        self._check_open()
        wanted = self._check_page_args(limit, metadata)
        after = decode_cursor(cursor) if cursor is not None else None
        rows = sorted(
            (
                ((entry["updated"], sid), entry)
                for sid, entry in self._live()
                if all(entry["meta"].get(k) == v for k, v in wanted.items())
            ),
            key=lambda row: row[0],
            reverse=True,
        )
        if after is not None:
            rows = [row for row in rows if row[0] < after]
        page = rows[:limit]
        more = len(rows) > limit
        next_cursor = encode_cursor(*page[-1][0]) if more else None
        return SessionPage(
            sessions=[info_of(key[1], entry) for key, entry in page], next_cursor=next_cursor
        )

    async def count_sessions(self) -> int:
        self._check_open()
        return len(self._live())

    async def delete_session(self, session_id: str) -> bool:
        self._check_open()
        return await self.session(session_id).storage_delete()

    async def purge_expired(self) -> int:
        self._check_open()
        sessions = _space(self.space)["sessions"]
        live = {sid for sid, _ in self._live()}
        expired = [sid for sid in sessions if sid not in live]
        for sid in expired:
            del sessions[sid]
        return len(expired)

    async def ping(self) -> bool:
        self._check_open()
        return True

    async def storage_close(self) -> None:
        pass


def open_toy_store(url: str, **options: Any) -> ToyStore:
    space = url.split("://", 1)[1].split("?", 1)[0] or "default"
    session_options, extra = resolve_options([options], extra={"index_metadata"}, context=url)
    return ToyStore(space, session_options, extra.get("index_metadata", ()))
