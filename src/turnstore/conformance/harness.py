"""What a conformance test gets: a backend under test, behind one small interface.

The shipped tests ask a `Backend` for sessions and its store. `python -m turnstore.conformance`
runs them over `UrlBackend` (any store URL); the project's own suite subclasses `Backend`
for every built-in backend and topology.
"""

from __future__ import annotations

import uuid
from typing import Any

from ..backend import AUTO_TOKEN_TTL_MS, batch_token
from ..session import BaseSession
from ..store import SessionStore, open_store
from ..urls import mask_url

__all__ = ["Backend", "UrlBackend", "unique_id"]

# Whether a second open of a URL reaches the same storage, found once per URL and run.
_SHARED_BY_URL: dict[str, bool] = {}


def unique_id(label: str = "s") -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


class Backend:
    """One backend/topology under test: makes sessions and tampers with raw storage."""

    name = "abstract"
    store: Any  # a SessionStore over the same storage as `session()`
    #: True when `store_with` reaches the storage of `store`; False when it can only open a
    #: new, empty one (an in-memory database that one connection holds).
    reopens = True

    def session(self, session_id: str | None = None, **options: Any) -> BaseSession:
        raise NotImplementedError

    def other_client_session(self, session_id: str, **options: Any) -> BaseSession:
        """A session on the same storage through separate connections (another worker)."""
        raise NotImplementedError

    def owning_session(self, session_id: str | None = None, **options: Any) -> BaseSession:
        """A session that opened its own connections (so it may serve several event loops)."""
        return self.session(session_id, **options)

    def store_with(self, **options: Any) -> SessionStore:
        """Another store of this backend with these store options (`index_metadata=...`),
        over the same storage when `reopens`; closed by `aclose`."""
        raise NotImplementedError

    async def inject_raw(self, session: BaseSession, raw: str) -> None:
        """Store a raw value behind the validation (what a foreign writer may leave).

        By default through the backend protocol's append, below the session's checks.
        """
        await session.storage_append([raw.encode()], batch_token(), AUTO_TOKEN_TTL_MS)

    async def aclose(self) -> None:
        pass


class UrlBackend(Backend):
    """The store at a URL, emptied before each test (every session in it is deleted).

    `other_client_session` opens the URL a second time when that reaches the same storage
    (found out once, with a probe session), else it uses the first store, as one process's
    `memory://` or `sqlite://` must.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = mask_url(url)
        self.store: SessionStore = open_store(url)
        self._stores: list[SessionStore] = [self.store]
        self._shared: bool | None = _SHARED_BY_URL.get(url)

    async def empty(self) -> None:
        """Delete every session of the store (and what expired)."""
        while True:
            page = await self.store.list_sessions(limit=500)
            for info in page.sessions:
                await self.store.delete_session(info.session_id)
            if not page.sessions:
                break
        await self.store.purge_expired()

    async def _second_open_shares(self) -> bool:
        if self._shared is None:
            probe = unique_id("probe")
            await self.store.session(probe).update_metadata({"probe": "1"})
            other = open_store(self.url)
            try:
                self._shared = await other.get_info(probe) is not None
                _SHARED_BY_URL[self.url] = self._shared
            finally:
                await other.close()
                await self.store.delete_session(probe)
        return self._shared

    def session(self, session_id: str | None = None, **options: Any) -> BaseSession:
        return self.store.session(unique_id() if session_id is None else session_id, **options)

    def other_client_session(self, session_id: str, **options: Any) -> BaseSession:
        if not self._shared:
            return self.session(session_id, **options)
        store = open_store(self.url)
        self._stores.append(store)
        return store.session(session_id, **options)

    def store_with(self, **options: Any) -> SessionStore:
        store = open_store(self.url, **options)
        self._stores.append(store)
        return store

    async def start(self) -> None:
        self.reopens = await self._second_open_shares()
        await self.empty()

    async def aclose(self) -> None:
        for store in self._stores:
            await store.close()
