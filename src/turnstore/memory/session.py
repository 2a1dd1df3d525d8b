"""`MemorySession`: a session in this process's memory, with the whole session contract."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn, TypeVar

from ..backend import PopResult, RawItem, Snapshot, Times
from ..info import SessionInfo
from ..items import DEFAULT_MAX_ITEM_BYTES
from ..options import OnCorrupt, resolve_options
from ..session import BaseSession
from .data import MemoryConnection, MemoryData

__all__ = ["MemorySession"]

_M = TypeVar("_M", bound="MemorySession")


class MemorySession(BaseSession):
    """A session kept in this process only: for unit tests of agents and one-process tools.

    Standalone, it has a private store of its own; `MemoryStore.session()` hands out sessions
    that share the store's. TTL, windows, idempotency and locks (between tasks and threads)
    behave as on every other backend.
    """

    kind = "MemorySession"

    def __init__(
        self,
        session_id: str,
        *,
        ttl: float | None = None,
        refresh_ttl_on_read: bool = True,
        max_turns: int | None = None,
        max_items: int | None = None,
        session_settings: Any = None,
        on_corrupt: OnCorrupt = "skip",
        max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES,
        connection: MemoryConnection | None = None,
        owns_connection: bool = True,
        **unknown: NoReturn,
    ) -> None:
        """`connection` is what a store or a fork hands over (the storage to share); the
        session closes it iff `owns_connection`. Any other keyword raises
        `ConfigurationError` naming it."""
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
        super().__init__(session_id, options)
        self._connection = connection or MemoryConnection(MemoryData(), self.kind)
        self._owns_connection = owns_connection

    def __repr__(self) -> str:
        return f"{type(self).__name__}(session_id={self.session_id!r}, ttl={self.ttl!r})"

    @property
    def _data(self) -> MemoryData:
        return self._connection.get()

    async def storage_read(self, count: int | None) -> tuple[list[RawItem], int]:
        refresh = self._options.ttl_ms if self._options.refresh_ttl_on_read else None
        return self._data.read(self.session_id, count, refresh)

    async def storage_append(self, encoded: list[bytes], token: str, token_ttl_ms: int) -> bool:
        return self._data.append(
            self.session_id,
            encoded,
            token,
            token_ttl_ms,
            self._options.ttl_ms,
            self._options.max_items,
        )

    async def storage_pop(self, skip_corrupt: bool) -> PopResult | None:
        return self._data.pop(self.session_id, skip_corrupt, self._options.ttl_ms)

    async def storage_delete(self) -> bool:
        return self._data.delete(self.session_id)

    async def storage_replace(
        self,
        encoded: list[bytes],
        metadata: Mapping[str, str] | None,
        times: Times | None = None,
    ) -> None:
        self._data.replace(
            self.session_id,
            encoded,
            metadata,
            times,
            self._options.ttl_ms,
            self._options.max_items,
        )

    async def storage_snapshot(self) -> Snapshot | None:
        return self._data.snapshot(self.session_id)

    async def storage_info(self) -> SessionInfo | None:
        return self._data.info(self.session_id)

    async def storage_update_metadata(self, set_pairs: dict[str, str], remove: list[str]) -> None:
        self._data.update_metadata(self.session_id, set_pairs, remove, self._options.ttl_ms)

    async def storage_touch(self) -> bool:
        return self._data.touch(self.session_id, self._options.ttl_ms)

    async def storage_lock_acquire(self, token: str, lease_ms: int) -> bool:
        return self._data.lock_acquire(self.session_id, token, lease_ms)

    async def storage_lock_renew(self, token: str, lease_ms: int) -> bool:
        return self._data.lock_renew(self.session_id, token, lease_ms)

    async def storage_lock_release(self, token: str) -> bool:
        return self._data.lock_release(self.session_id, token)

    async def storage_close(self) -> None:
        if self._owns_connection:
            self._connection.close()

    def sibling(self: _M, session_id: str) -> _M:
        if self._owns_connection:
            # A fork outlives its source: its own way to the same data.
            connection, owns = MemoryConnection(self._connection.data, self.kind), True
        else:
            connection, owns = self._connection, False
        return type(self)(
            session_id,
            connection=connection,
            owns_connection=owns,
            **self._options.keywords(),
        )
