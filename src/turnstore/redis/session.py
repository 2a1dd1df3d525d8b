"""`RedisSession`: one Lua script (one round trip) per operation, on standalone and Cluster."""

from __future__ import annotations

import random
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, TypeVar

from ..backend import (
    AUTO_TOKEN_TTL_MS,
    PopResult,
    RawItem,
    SessionCopy,
    Snapshot,
    Times,
    is_batch_token,
    validate_index_metadata,
)
from ..info import SessionInfo, datetime_from_ms
from ..items import DEFAULT_MAX_ITEM_BYTES
from ..options import OnCorrupt, resolve_options
from ..session import BaseSession
from ..urls import mask_url
from . import retry, scripts
from .clients import AnyRedis, ClientSource
from .keys import SessionKeys, bucket_count, session_keys, validate_key_prefix
from .retry import BUDGET_OPTIONS, Budget
from .urls import default_redis_url, parse_redis_url

__all__ = ["RedisSession"]

_R = TypeVar("_R", bound="RedisSession")

#: Share of appends that also forget expired batch tokens and clean up after expired
#: sessions of their bucket (keeps the common append short).
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


def replace_args(
    member: bytes,
    id_bytes: bytes,
    ttl_arg: bytes,
    max_items_arg: bytes,
    encoded: list[bytes],
    metadata: Mapping[str, str] | None,
    times: Times | None,
    index_metadata: Sequence[str],
) -> list[Any]:
    """The ARGV of the replace script (`storage_replace`, and many sessions at once in
    `RedisStore.replace_sessions`)."""
    pairs: list[str] = []
    if metadata is not None:
        for key, value in metadata.items():
            pairs += [key, value]
    return [
        member,
        id_bytes,
        ttl_arg,
        max_items_arg,
        "1" if metadata is not None else "0",
        b"" if times is None else b"%d" % times[0],
        b"" if times is None else b"%d" % times[1],
        len(index_metadata),
        *index_metadata,
        len(pairs) // 2,
        *pairs,
        *encoded,
    ]


def snapshot_of(reply: Any) -> Snapshot | None:
    """A `Snapshot` from the snapshot script's reply."""
    if not reply:
        return None
    _fields, metadata = _meta_fields(reply[0])
    return Snapshot(raws=list(reply[1]), metadata=metadata)


def info_of(session_id: str, reply: Any) -> SessionInfo | None:
    """A `SessionInfo` from the info script's reply."""
    if not reply:
        return None
    return _info_from(session_id, reply, int(reply[1]))


def copy_of(session_id: str, reply: Any) -> SessionCopy | None:
    """A `SessionCopy` (info and items) from the snapshot script's reply."""
    if not reply:
        return None
    raws = list(reply[1])
    return SessionCopy(info=_info_from(session_id, reply, len(raws)), raws=raws)


def _info_from(session_id: str, reply: Any, item_count: int) -> SessionInfo:
    """The info in a reply of the info or snapshot script: {meta, _, pttl, now, score}."""
    fields, metadata = _meta_fields(reply[0])
    pttl, now = int(reply[2]), int(reply[3])
    created = int(fields.get("created", now))
    return SessionInfo(
        session_id=session_id,
        created_at=datetime_from_ms(created),
        updated_at=datetime_from_ms(_update_time(reply[4], created)),
        item_count=item_count,
        expires_at=datetime_from_ms(now + pttl) if pttl >= 0 else None,
        metadata=metadata,
    )


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
        index_metadata: Sequence[str] = (),
        connection: ClientSource | None = None,
        owns_connection: bool = True,
        **unknown: NoReturn,
    ) -> None:
        """`timeout` (seconds one call may take in all, default 10) and `retries` (default
        3) bound every call; see docs/production.md. `index_metadata`: the metadata keys its
        store indexes (`RedisStore(index_metadata=...)` passes its own). `connection` is
        what a store or a fork hands over instead of `client` (the source of the clients to
        send on, with its own time budget); the session closes it iff `owns_connection`.
        Any other keyword raises `ConfigurationError` naming it."""
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
        key_prefix = validate_key_prefix(key_prefix)
        if connection is None:
            budget = Budget.from_options({"timeout": timeout, "retries": retries})
            connection = (
                ClientSource(client=client, budget=budget)
                if client is not None
                else ClientSource(config=parse_redis_url(default_redis_url()), budget=budget)
            )
        super().__init__(session_id, options)
        self.key_prefix = key_prefix
        self._source = connection
        self._owns_source = owns_connection
        self._keys = session_keys(key_prefix, session_id, bucket_count(connection.cluster))
        # Arguments that never change are encoded once: redis-py would encode every str and
        # int again on every call, which shows on the append path.
        self._script_keys: tuple[bytes, ...] = tuple(k.encode() for k in self._keys.script_keys)
        self._member = self._keys.member.encode()
        ttl_ms = options.ttl_ms
        self._ttl_arg = b"" if ttl_ms is None else str(ttl_ms).encode()
        max_items = options.max_items
        self._max_items_arg = b"" if max_items is None else str(max_items).encode()
        self._id_bytes = session_id.encode("utf-8")
        self.index_metadata = validate_index_metadata(index_metadata)
        # The count and names of the indexed keys, as the metadata script takes them.
        self._indexed_args: list[Any] = [len(self.index_metadata), *self.index_metadata]
        self._append_flags = (b"i", b"pci") if self.index_metadata else (b"", b"pc")
        # Batch tokens of appends answered on their only send, forgotten by the next append.
        self._answered: list[str] = []

    @classmethod
    def from_url(cls: type[_R], session_id: str, url: str, **options: Any) -> _R:
        """A session that opens (and owns) its own client for `url`.

        Query parameters set options (`?ttl=3600&key_prefix=app&timeout=5`); keyword
        options win. `timeout`, `retries`, `socket_timeout` and `socket_connect_timeout` set
        the time budget of every call (see docs/production.md).
        """
        config = parse_redis_url(url)
        session_options, extra = resolve_options(
            [config.session_options, options],
            extra={"key_prefix", *BUDGET_OPTIONS},
            context=f"{cls.__name__}.from_url({session_id!r}, {mask_url(url)!r}, ...)",
        )
        key_prefix = extra.pop("key_prefix", None) or config.store_options.get("key_prefix")
        return cls(
            session_id,
            key_prefix=key_prefix or "turnstore",
            connection=ClientSource(config=config, budget=config.budget(extra)),
            **session_options.keywords(),
        )

    @property
    def connection(self) -> ClientSource:
        """Where this session's clients come from (its store's, when a store made it)."""
        return self._source

    @property
    def keys(self) -> SessionKeys:
        """The Redis keys of this session (for operators and tests looking at the server)."""
        return self._keys

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

    async def storage_read(self, count: int | None) -> tuple[list[RawItem], int]:
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

    async def storage_append(self, encoded: list[bytes], token: str, token_ttl_ms: int) -> bool:
        # The batch tokens of this writer's earlier appends that went out once and were
        # answered go with this append: no copy of those requests is left anywhere, so the
        # session need not keep their tokens for their whole lifetime (see append.lua).
        answered, self._answered = self._answered, []
        sends = retry.Sends()
        try:
            applied = await self._source.script(
                scripts.APPEND,
                self._script_keys,
                [
                    self._member,
                    self._id_bytes,
                    token.encode(),
                    b"%d" % token_ttl_ms,
                    self._ttl_arg,
                    self._max_items_arg,
                    self._append_flags[random.random() < PRUNE_TOKENS_EVERY],
                    " ".join(answered).encode() if answered else b"",
                    *encoded,
                ],
                sends=sends,
            )
        except BaseException:
            self._answered.extend(answered)
            raise
        if sends.count == 1 and is_batch_token(token) and self._source.sees_every_send:
            self._answered.append(token)
        return bool(applied)

    async def storage_pop(self, skip_corrupt: bool) -> PopResult | None:
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

    async def storage_delete(self) -> bool:
        return bool(await self._run(scripts.CLEAR, [self._member]))

    async def storage_replace(
        self,
        encoded: list[bytes],
        metadata: Mapping[str, str] | None,
        times: Times | None = None,
    ) -> None:
        await self._run(
            scripts.REPLACE,
            replace_args(
                self._member,
                self._id_bytes,
                self._ttl_arg,
                self._max_items_arg,
                encoded,
                metadata,
                times,
                self.index_metadata,
            ),
        )

    async def storage_snapshot(self) -> Snapshot | None:
        return snapshot_of(await self._run(scripts.SNAPSHOT, [self._member]))

    async def storage_info(self) -> SessionInfo | None:
        return info_of(self.session_id, await self._run(scripts.INFO, [self._member]))

    async def storage_update_metadata(self, set_pairs: dict[str, str], remove: list[str]) -> None:
        flat: list[str] = []
        for key, value in set_pairs.items():
            flat += [key, value]
        await self._run(
            scripts.METADATA,
            [
                self._member,
                self._id_bytes,
                self._ttl_arg,
                *self._indexed_args,
                len(set_pairs),
                *flat,
                *remove,
            ],
        )

    async def storage_touch(self) -> bool:
        return bool(await self._run(scripts.TOUCH, [self._member, self._ttl_arg]))

    async def storage_close(self) -> None:
        if self._owns_source:
            await self._source.aclose(self.kind)

    # The lock scripts compare the holder's token, so each may run twice: taking a lock one
    # already holds succeeds, renewing is idempotent, and a second release finds nothing of
    # its own to delete (the lock object tells that apart from a lost lease by its clock).

    async def _lock_script(self, script: scripts.LuaScript, args: list[Any]) -> bool:
        return bool(await self._source.script(script, (self._keys.lock.encode(),), args))

    async def storage_lock_acquire(self, token: str, lease_ms: int) -> bool:
        return await self._lock_script(scripts.LOCK_ACQUIRE, [token, lease_ms])

    async def storage_lock_renew(self, token: str, lease_ms: int) -> bool:
        return await self._lock_script(scripts.LOCK_RENEW, [token, lease_ms])

    async def storage_lock_release(self, token: str) -> bool:
        return await self._lock_script(scripts.LOCK_RELEASE, [token])

    def sibling(self: _R, session_id: str) -> _R:
        if self._owns_source and self._source.owns_clients:
            # A fork outlives its source session: it opens (and owns) its own clients.
            source, owns = self._source.clone(), True
        else:
            source, owns = self._source, False
        return type(self)(
            session_id,
            key_prefix=self.key_prefix,
            connection=source,
            owns_connection=owns,
            index_metadata=self.index_metadata,
            **self._options.keywords(),
        )
