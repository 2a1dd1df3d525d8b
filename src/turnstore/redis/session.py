"""`RedisSession`: one Lua script (one round trip) per operation, on standalone and Cluster."""

from __future__ import annotations

import random
import secrets
from collections.abc import Mapping
from typing import Any

from ..info import SessionInfo, datetime_from_ms
from ..items import DEFAULT_MAX_ITEM_BYTES
from ..options import OnCorrupt, SessionOptions
from ..session import AUTO_TOKEN_TTL_MS, BaseSession, PopResult, RawItem, Snapshot
from . import scripts
from .clients import AnyRedis, ClientSource
from .keys import session_keys, validate_key_prefix
from .retry import Budget
from .urls import default_redis_url, parse_redis_url

__all__ = ["RedisSession"]

#: Share of appends that also forget expired batch tokens (keeps the common append short).
PRUNE_TOKENS_EVERY = 1 / 16


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _update_time(score: Any, created: int) -> int:
    """A session's update time in ms: its score in the bucket index (the creation time for a
    hash without an index entry, which only a write behind the library's back leaves)."""
    if score is None or score is False:
        return created
    return int(float(score))


def _meta_fields(flat: list[Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Split a HGETALL reply into (bookkeeping fields, user metadata)."""
    fields: dict[str, str] = {}
    metadata: dict[str, str] = {}
    for i in range(0, len(flat), 2):
        name, value = _text(flat[i]), _text(flat[i + 1])
        if name.startswith("m:"):
            metadata[name[2:]] = value
        else:
            fields[name] = value
    return fields, metadata


class RedisSession(BaseSession):
    """A session stored in Redis (standalone, Sentinel or Cluster; Valkey too).

    Items live in one LIST; every operation is one atomic Lua script run by SHA, so it is one
    network round trip and holds on Redis Cluster, where all of a session's keys share a slot.
    """

    kind = "RedisSession"

    def __init__(
        self,
        session_id: str,
        *,
        client: AnyRedis | None = None,
        key_prefix: str = "turnstore",
        ttl: float | None = None,
        refresh_ttl_on_read: bool = True,
        max_turns: int | None = None,
        max_items: int | None = None,
        session_settings: Any = None,
        on_corrupt: OnCorrupt = "skip",
        max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> None:
        options = SessionOptions(
            ttl=ttl,
            refresh_ttl_on_read=refresh_ttl_on_read,
            max_turns=max_turns,
            max_items=max_items,
            session_settings=session_settings,
            on_corrupt=on_corrupt,
            max_item_bytes=max_item_bytes,
        )
        budget = Budget.from_options({"timeout": timeout, "retries": retries})
        source = (
            ClientSource(client=client, budget=budget)
            if client is not None
            else ClientSource(config=parse_redis_url(default_redis_url()), budget=budget)
        )
        self._setup(session_id, source, validate_key_prefix(key_prefix), options, owns=True)

    def _setup(
        self,
        session_id: str,
        source: ClientSource,
        key_prefix: str,
        options: SessionOptions,
        *,
        owns: bool,
    ) -> None:
        super().__init__(session_id, options)
        self.key_prefix = key_prefix
        self._source = source
        self._owns_source = owns
        self._keys = session_keys(key_prefix, session_id)
        # Arguments that never change are encoded once: redis-py would encode every str and
        # int again on every call, which shows on the append path.
        self._script_keys: tuple[bytes, ...] = tuple(k.encode() for k in self._keys.script_keys)
        self._member = self._keys.member.encode()
        ttl_ms = options.ttl_ms
        self._ttl_arg = b"" if ttl_ms is None else str(ttl_ms).encode()
        max_items = options.max_items
        self._max_items_arg = b"" if max_items is None else str(max_items).encode()
        self._id_bytes = session_id.encode("utf-8")

    @classmethod
    def _from_parts(
        cls,
        session_id: str,
        source: ClientSource,
        key_prefix: str,
        options: SessionOptions,
        *,
        owns: bool,
    ) -> RedisSession:
        """A session over an existing client source (stores and fork use this; no I/O)."""
        session = cls.__new__(cls)
        session._setup(session_id, source, key_prefix, options, owns=owns)
        return session

    @classmethod
    def from_url(cls, session_id: str, url: str, **options: Any) -> RedisSession:
        """A session that opens (and owns) its own client for `url`.

        Query parameters set options (`?ttl=3600&key_prefix=app&timeout=5`); keyword
        options win. `timeout`, `retries`, `socket_timeout` and `socket_connect_timeout` set
        the time budget of every call (see docs/production.md).
        """
        config = parse_redis_url(url)
        key_prefix, session_options, budget = config.resolve_options(options)
        return cls._from_parts(
            session_id,
            ClientSource(config=config, budget=budget),
            key_prefix,
            session_options,
            owns=True,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(session_id={self.session_id!r}, "
            f"key_prefix={self.key_prefix!r}, ttl={self.ttl!r})"
        )

    @property
    def client(self) -> AnyRedis:
        """The redis-py client serving the running event loop."""
        self._check_open()
        return self._source.client()  # type: ignore[no-any-return]

    async def _run(
        self, script: scripts.LuaScript, args: list[Any], extra_keys: tuple[bytes, ...] = ()
    ) -> Any:
        """Run one of the session's scripts: one round trip, resent (within the time budget)
        when its outcome is unknown. Every script may safely run twice: appends carry a batch
        token, pops a receipt key; reads, clear, replace, metadata and touch set state rather
        than add to it."""
        keys = self._script_keys + extra_keys if extra_keys else self._script_keys
        return await self._source.script(script, keys, args)

    # -- storage primitives ----------------------------------------------------------------

    async def _read_tail(self, count: int | None) -> tuple[list[RawItem], int]:
        # A read of the newest `count` items is one script (O(count), with the deadline
        # refreshed in the same step when the TTL slides on reads). A read of everything is
        # a plain LRANGE, so a long history never passes through Lua, which would copy every
        # byte once more; pipelined with the touch script when the TTL slides.
        refresh = self._options.refresh_ttl_on_read and self._options.ttl is not None
        if count is not None:
            if refresh:
                reply = await self._run(
                    scripts.TAIL_TOUCH, [self._member, self._ttl_arg, b"%d" % count]
                )
            else:
                reply = await self._run(scripts.TAIL, [b"%d" % count])
            return list(reply[1]), int(reply[0])
        items_key = self._script_keys[0]
        commands: list[tuple[Any, ...]] = [("LRANGE", items_key, 0, -1)]
        if refresh:
            commands.append(scripts.TOUCH.command(self._script_keys, [self._member, self._ttl_arg]))
        replies = await self._source.send(commands)
        self._source.raise_errors(replies)
        return list(replies[0]), len(replies[0])

    async def _append(self, encoded: list[bytes], token: str, token_ttl_ms: int) -> bool:
        applied = await self._run(
            scripts.APPEND,
            [
                self._member,
                self._id_bytes,
                token.encode(),
                b"%d" % token_ttl_ms,
                self._ttl_arg,
                self._max_items_arg,
                b"1" if random.random() < PRUNE_TOKENS_EVERY else b"0",
                *encoded,
            ],
        )
        return bool(applied)

    async def _pop(self, skip_corrupt: bool) -> PopResult | None:
        token = secrets.token_urlsafe(12)
        reply = await self._run(
            scripts.POP,
            [
                self._member,
                self._id_bytes,
                self._ttl_arg,
                "1" if skip_corrupt else "0",
                "\x00turnstore:removed:" + token,
                AUTO_TOKEN_TTL_MS,
            ],
            extra_keys=(self._keys.receipt(token).encode(),),
        )
        if not reply:
            return None
        return PopResult(raw=reply[0], position=int(reply[1]), corrupt=len(reply) > 2)

    async def _clear(self) -> None:
        await self._delete()

    async def _delete(self) -> bool:
        """Clear the session; True if it existed."""
        return bool(await self._run(scripts.CLEAR, [self._member]))

    async def _replace(
        self,
        encoded: list[bytes],
        metadata: Mapping[str, str] | None,
        times: tuple[int, int] | None = None,
    ) -> None:
        pairs: list[str] = []
        if metadata is not None:
            for key, value in metadata.items():
                pairs += [key, value]
        await self._run(
            scripts.REPLACE,
            [
                self._member,
                self._id_bytes,
                self._ttl_arg,
                self._max_items_arg,
                "1" if metadata is not None else "0",
                b"" if times is None else b"%d" % times[0],
                b"" if times is None else b"%d" % times[1],
                len(pairs) // 2,
                *pairs,
                *encoded,
            ],
        )

    async def _snapshot(self) -> Snapshot | None:
        reply = await self._run(scripts.SNAPSHOT, [])
        if not reply:
            return None
        _fields, metadata = _meta_fields(reply[0])
        return Snapshot(raws=list(reply[1]), metadata=metadata)

    async def _info(self) -> SessionInfo | None:
        reply = await self._run(scripts.INFO, [self._member])
        if not reply:
            return None
        fields, metadata = _meta_fields(reply[0])
        item_count, pttl, now = int(reply[1]), int(reply[2]), int(reply[3])
        created = int(fields.get("created", now))
        return SessionInfo(
            session_id=self.session_id,
            created_at=datetime_from_ms(created),
            updated_at=datetime_from_ms(_update_time(reply[4], created)),
            item_count=item_count,
            expires_at=datetime_from_ms(now + pttl) if pttl >= 0 else None,
            metadata=metadata,
        )

    async def _update_metadata(self, set_pairs: dict[str, str], remove: list[str]) -> None:
        flat: list[str] = []
        for key, value in set_pairs.items():
            flat += [key, value]
        await self._run(
            scripts.METADATA,
            [self._member, self._id_bytes, self._ttl_arg, len(set_pairs), *flat, *remove],
        )

    async def _touch(self) -> bool:
        return bool(await self._run(scripts.TOUCH, [self._member, self._ttl_arg]))

    async def _release(self) -> None:
        if self._owns_source:
            await self._source.aclose(self.kind)

    # The lock scripts compare the holder's token, so each may run twice: taking a lock one
    # already holds succeeds, renewing is idempotent, and a second release finds nothing of
    # its own to delete (the lock object tells that apart from a lost lease by its clock).

    async def _lock_script(self, script: scripts.LuaScript, args: list[Any]) -> bool:
        return bool(await self._source.script(script, (self._keys.lock.encode(),), args))

    async def _lock_acquire(self, token: str, lease_ms: int) -> bool:
        return await self._lock_script(scripts.LOCK_ACQUIRE, [token, lease_ms])

    async def _lock_renew(self, token: str, lease_ms: int) -> bool:
        return await self._lock_script(scripts.LOCK_RENEW, [token, lease_ms])

    async def _lock_release(self, token: str) -> bool:
        return await self._lock_script(scripts.LOCK_RELEASE, [token])

    def _sibling(self, session_id: str) -> RedisSession:
        if self._owns_source and self._source.owns_clients:
            # A fork outlives its source session: it opens (and owns) its own clients.
            return type(self)._from_parts(
                session_id, self._source.clone(), self.key_prefix, self._options, owns=True
            )
        return type(self)._from_parts(
            session_id, self._source, self.key_prefix, self._options, owns=False
        )
