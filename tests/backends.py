"""The built-in backends and topologies under test, behind the shipped suite's interface."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from turnstore import MemoryStore, RedisSession, RedisStore
from turnstore.conformance.harness import Backend, unique_id
from turnstore.session import BaseSession


class RedisBackend(Backend):
    """Sessions over redis-py clients the tests make (`injected`), or, by default, sessions
    of stores opened by URL, which send on their own direct lane (the way users open them).
    `client` is always a plain client of the same server, for looking behind the library."""

    def __init__(
        self, make_client: Callable[[], Any], name: str, url: str, *, injected: bool = False
    ) -> None:
        self.name = name
        self.url = url
        self.injected = injected
        self._make_client = make_client
        self._clients: list[Any] = []
        self.prefix = unique_id("t")
        self.client = self._new_client()
        self._owning: list[RedisSession] = []
        self._url_stores: list[RedisStore] = []
        self._by_prefix: dict[str, RedisStore] = {}
        self.store = (
            RedisStore(self.client, key_prefix=self.prefix)
            if injected
            else self._store_for(self.prefix)
        )

    def _new_client(self) -> Any:
        client = self._make_client()
        self._clients.append(client)
        return client

    def _new_url_store(self, key_prefix: str) -> RedisStore:
        store = RedisStore.from_url(self.url, key_prefix=key_prefix)
        self._url_stores.append(store)
        return store

    def _store_for(self, key_prefix: str) -> RedisStore:
        if key_prefix not in self._by_prefix:
            self._by_prefix[key_prefix] = self._new_url_store(key_prefix)
        return self._by_prefix[key_prefix]

    def session(self, session_id: str | None = None, **options: Any) -> RedisSession:
        session_id = unique_id() if session_id is None else session_id
        key_prefix = options.pop("key_prefix", self.prefix)
        if self.injected:
            return RedisSession(session_id, client=self.client, key_prefix=key_prefix, **options)
        return self._store_for(key_prefix).session(session_id, **options)

    def store_with(self, **options: Any) -> Any:
        if self.injected:
            return RedisStore(self.client, key_prefix=self.prefix, **options)
        store = RedisStore.from_url(self.url, key_prefix=self.prefix, **options)
        self._url_stores.append(store)
        return store

    def other_client_session(self, session_id: str, **options: Any) -> RedisSession:
        key_prefix = options.pop("key_prefix", self.prefix)
        if self.injected:
            client = self._new_client()
            return RedisSession(session_id, client=client, key_prefix=key_prefix, **options)
        return self._new_url_store(key_prefix).session(session_id, **options)

    def owning_session(self, session_id: str | None = None, **options: Any) -> RedisSession:
        options.setdefault("key_prefix", self.prefix)
        session = RedisSession.from_url(
            unique_id() if session_id is None else session_id, self.url, **options
        )
        self._owning.append(session)
        return session

    async def inject_raw(self, session: BaseSession, raw: str) -> None:
        assert isinstance(session, RedisSession)
        await self.client.rpush(session.keys.items, raw)

    async def aclose(self) -> None:
        for session in self._owning:
            await session.close()
        for store in self._url_stores:
            await store.close()
        for client in self._clients:
            await client.aclose()


class SQLiteBackend(Backend):
    def __init__(self, db_path: str, name: str) -> None:
        from turnstore.sqlite import SQLiteSession, SQLiteStore

        self.name = name
        self.db_path = db_path
        self._session_class = SQLiteSession
        self._stores: list[Any] = []
        self.store = SQLiteStore(db_path) if db_path != ":memory:" else SQLiteStore(":memory:")
        self._stores.append(self.store)
        # An in-memory database belongs to its one connection: another store gets its own.
        self.reopens = db_path != ":memory:"

    def store_with(self, **options: Any) -> Any:
        store = type(self.store)(self.db_path, **options)
        self._stores.append(store)
        return store

    def session(self, session_id: str | None = None, **options: Any) -> BaseSession:
        session: BaseSession = self.store.session(
            unique_id() if session_id is None else session_id, **options
        )
        return session

    def other_client_session(self, session_id: str, **options: Any) -> BaseSession:
        if self.db_path == ":memory:":
            return self.session(session_id, **options)  # one database: one connection
        store = type(self.store)(self.db_path)
        self._stores.append(store)
        session: BaseSession = store.session(session_id, **options)
        return session

    async def inject_raw(self, session: BaseSession, raw: str) -> None:
        if self.db_path == ":memory:":
            # Only the store's own connection reaches an in-memory database: the protocol's
            # append, below the session's checks.
            await super().inject_raw(session, raw)
            return
        # A foreign writer of the file (the SDK, a script): a row of the SDK's messages table
        # through a connection of its own.
        conn = sqlite3.connect(self.db_path)
        try:
            with conn:
                conn.execute(
                    "INSERT INTO agent_messages (session_id, message_data) VALUES (?, ?)",
                    (session.session_id, raw),
                )
        finally:
            conn.close()

    async def aclose(self) -> None:
        for store in self._stores:
            await store.close()


class MemoryBackend(Backend):
    """`memory://`: a named store, so a second store on the name plays the other worker."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._store_name = unique_id("mem")
        self._stores = [MemoryStore(name=self._store_name)]
        self.store = self._stores[0]

    def session(self, session_id: str | None = None, **options: Any) -> BaseSession:
        return self.store.session(unique_id() if session_id is None else session_id, **options)

    def store_with(self, **options: Any) -> Any:
        store = MemoryStore(name=self._store_name, **options)
        self._stores.append(store)
        return store

    def other_client_session(self, session_id: str, **options: Any) -> BaseSession:
        store = MemoryStore(name=self._store_name)
        self._stores.append(store)
        return store.session(session_id, **options)

    async def aclose(self) -> None:
        for store in self._stores:
            await store.close()
