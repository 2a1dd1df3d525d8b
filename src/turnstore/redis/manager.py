"""`RedisSessionManager`: the original proposal's names, as a thin layer over `RedisStore`."""

from __future__ import annotations

import fnmatch
from types import TracebackType
from typing import Any

from .session import RedisSession
from .store import RedisStore
from .urls import parse_redis_url

__all__ = ["RedisSessionManager"]

#: The proposal's pool size, used when neither the call nor the URL gives one.
DEFAULT_MAX_CONNECTIONS = 20


class RedisSessionManager:
    """Pooled Redis sessions with a default TTL, listing and deletion.

    `get_session(id, ttl=0)` means no expiry (not "use the default"); `ttl=None` uses
    `default_ttl`. Everything else is `RedisStore`'s, available as `manager.store`.

    Options left at `None` come from the URL's query (`?max_connections=50&ttl=3600&
    key_prefix=app`), else the defaults: 20 connections, no expiry, `turnstore`.
    `default_ttl=0` means no expiry, whatever the URL says.
    """

    def __init__(
        self,
        redis_url: str = "redis://localhost:6379/0",
        *,
        max_connections: int | None = None,
        default_ttl: float | None = None,
        key_prefix: str | None = None,
        **session_options: Any,
    ) -> None:
        config = parse_redis_url(redis_url)
        given: dict[str, Any] = dict(session_options)
        if default_ttl is not None:
            given["ttl"] = default_ttl or None
        if key_prefix is not None:
            given["key_prefix"] = key_prefix
        if max_connections is None:
            max_connections = config.store_options.get("max_connections", DEFAULT_MAX_CONNECTIONS)
        self.store = RedisStore.from_url(redis_url, max_connections=max_connections, **given)

    def __repr__(self) -> str:
        return f"RedisSessionManager({self.store!r})"

    def get_session(self, session_id: str, ttl: float | None = None) -> RedisSession:
        """A session sharing the manager's pool; `ttl=0` disables expiry for it."""
        if ttl is None:
            return self.store.session(session_id)
        return self.store.session(session_id, ttl=ttl or None)

    async def list_sessions(self, pattern: str | None = None) -> list[str]:
        """Live session ids, sorted, optionally filtered by a glob on the id (from the
        index: no KEYS)."""
        ids = await self.store.session_ids()
        if pattern is not None:
            ids = [i for i in ids if fnmatch.fnmatchcase(i, pattern)]
        return sorted(ids)

    async def delete_session(self, session_id: str) -> bool:
        """Delete a session; True if it existed."""
        return await self.store.delete_session(session_id)

    async def close(self) -> None:
        await self.store.close()

    async def __aenter__(self) -> RedisSessionManager:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
