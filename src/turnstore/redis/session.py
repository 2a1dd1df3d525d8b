"""`RedisSession`: one Lua script (one round trip) per operation, on standalone and Cluster."""

from __future__ import annotations

import asyncio
import random
import secrets
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from redis.exceptions import AuthenticationError, ClusterError, NoScriptError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..backend import AUTO_TOKEN_TTL_MS, PopResult, RawItem, Snapshot, Times
from ..info import SessionInfo, datetime_from_ms
from ..items import DEFAULT_MAX_ITEM_BYTES
from ..options import OnCorrupt, resolve_options
from ..session import BaseSession
from ..urls import mask_url
from . import scripts
from .connection import AnyRedis, ClientSource, default_redis_url, parse_redis_url
from .keys import SessionKeys, session_keys, validate_key_prefix

__all__ = ["RedisSession"]

_T = TypeVar("_T")
_R = TypeVar("_R", bound="RedisSession")

#: How many times a write whose reply was lost is sent (with the same batch token).
WRITE_ATTEMPTS = 4
#: Share of appends that also forget expired batch tokens (keeps the common append short).
PRUNE_TOKENS_EVERY = 1 / 16
#: How long a call waits out a Cluster slot that is being moved (TRYAGAIN) or a cluster that
#: is reconfiguring, retrying, before it gives up.
SLOT_MOVE_WAIT = 10.0

#: A Cluster slot is moving or the cluster is failing over: the script did not run, or ran
#: whole (redis-py followed MOVED/ASK). Waiting and sending it again is safe.
CLUSTER_IN_FLUX = (TryAgainError, ClusterError)


def _refused(exc: BaseException) -> bool:
    """A connection the server refused for good (credentials, certificate): not worth resending."""
    if isinstance(exc, AuthenticationError):
        return True
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause = cause.__cause__ or cause.__context__
    return "certificate verify failed" in str(exc)


async def retrying(call: Callable[[], Awaitable[_T]]) -> _T:
    """Run `call`, sending it again when its outcome is unknown or the cluster is in flux.

    Only for idempotent calls (every script of this package is: batch tokens, pop receipts,
    token-compared locks, state-setting writes).
    """
    loop = asyncio.get_running_loop()
    lost = 0
    give_up_at: float | None = None
    while True:
        try:
            return await call()
        except (RedisConnectionError, RedisTimeoutError) as exc:
            lost += 1
            if lost >= WRITE_ATTEMPTS or _refused(exc):
                raise
            await asyncio.sleep(0.05 * 2 ** (lost - 1))
        except CLUSTER_IN_FLUX:
            now = loop.time()
            give_up_at = give_up_at or now + SLOT_MOVE_WAIT
            if now >= give_up_at:
                raise
            await asyncio.sleep(0.05)


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
        connection: ClientSource | None = None,
        owns_connection: bool = True,
    ) -> None:
        """`connection` is what a store or a fork hands over instead of `client` (the
        source of the clients to send on); the session closes it iff `owns_connection`."""
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
                }
            ]
        )
        key_prefix = validate_key_prefix(key_prefix)
        if connection is None:
            connection = (
                ClientSource(client=client)
                if client is not None
                else ClientSource(config=parse_redis_url(default_redis_url()))
            )
        super().__init__(session_id, options)
        self.key_prefix = key_prefix
        self._source = connection
        self._owns_source = owns_connection
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
    def from_url(cls: type[_R], session_id: str, url: str, **options: Any) -> _R:
        """A session that opens (and owns) its own client for `url`.

        Query parameters set options (`?ttl=3600&key_prefix=app`); keyword options win.
        """
        config = parse_redis_url(url)
        session_options, extra = resolve_options(
            [config.session_options, options], extra={"key_prefix"}, context=mask_url(url)
        )
        key_prefix = extra.get("key_prefix") or config.store_options.get("key_prefix")
        return cls(
            session_id,
            key_prefix=key_prefix or "turnstore",
            connection=ClientSource(config=config),
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
        return self._source.get()  # type: ignore[no-any-return]

    async def _run(
        self, script: scripts.LuaScript, args: list[Any], extra_keys: tuple[bytes, ...] = ()
    ) -> Any:
        keys = self._script_keys + extra_keys if extra_keys else self._script_keys
        return await script.run(self._source, keys, args)

    async def _run_retrying(
        self, script: scripts.LuaScript, args: list[Any], extra_keys: tuple[bytes, ...] = ()
    ) -> Any:
        """Run an idempotent script, repeating it when its outcome is unknown.

        Only for scripts that may safely run twice: appends carry a batch token, pops a
        receipt key; reads, clear, replace, metadata and touch set state rather than add to it.
        """
        return await retrying(lambda: self._run(script, args, extra_keys))

    # -- storage primitives ----------------------------------------------------------------

    async def storage_read(self, count: int | None) -> tuple[list[RawItem], int]:
        # A read is plain LRANGE (with LLEN for a tail), pipelined with the touch script when
        # the TTL slides on reads: one round trip, and the items never pass through Lua,
        # which would copy every byte of a long history once more.
        items_key = self._script_keys[0]
        refresh = self._options.refresh_ttl_on_read and self._options.ttl is not None

        touch_args = [self._member, self._ttl_arg]
        commands: list[tuple[Any, ...]] = (
            [("LRANGE", items_key, 0, -1)]
            if count is None
            else [("LLEN", items_key), ("LRANGE", items_key, -count, -1)]
        )
        if refresh:
            keys = self._script_keys
            commands.append(("EVALSHA", scripts.TOUCH.sha, len(keys), *keys, *touch_args))

        async def read() -> tuple[list[RawItem], int]:
            lane = self._source.lane()
            if lane is not None:
                results = await lane.execute(commands)
            else:
                client = await self._source.ready()
                if len(commands) == 1:
                    raws = await client.lrange(items_key, 0, -1)
                    return raws, len(raws)
                pipe = client.pipeline(transaction=False)
                for command in commands:
                    pipe.execute_command(*command)
                results = await pipe.execute(raise_on_error=False)
            if refresh:
                touched = results.pop()
                if isinstance(touched, NoScriptError):
                    await self._run(scripts.TOUCH, touch_args)
                elif isinstance(touched, Exception):
                    raise touched
            for result in results:
                if isinstance(result, Exception):
                    raise result
            if count is None:
                return results[0], len(results[0])
            return results[1], int(results[0])

        return await retrying(read)

    async def storage_append(self, encoded: list[bytes], token: str, token_ttl_ms: int) -> bool:
        applied = await self._run_retrying(
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

    async def storage_pop(self, skip_corrupt: bool) -> PopResult | None:
        token = secrets.token_urlsafe(12)
        reply = await self._run_retrying(
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
        return bool(await self._run_retrying(scripts.CLEAR, [self._member]))

    async def storage_replace(
        self,
        encoded: list[bytes],
        metadata: Mapping[str, str] | None,
        times: Times | None = None,
    ) -> None:
        pairs: list[str] = []
        if metadata is not None:
            for key, value in metadata.items():
                pairs += [key, value]
        await self._run_retrying(
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

    async def storage_snapshot(self) -> Snapshot | None:
        reply = await self._run_retrying(scripts.SNAPSHOT, [])
        if not reply:
            return None
        _fields, metadata = _meta_fields(reply[0])
        return Snapshot(raws=list(reply[1]), metadata=metadata)

    async def storage_info(self) -> SessionInfo | None:
        reply = await self._run_retrying(scripts.INFO, [self._member])
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

    async def storage_update_metadata(self, set_pairs: dict[str, str], remove: list[str]) -> None:
        flat: list[str] = []
        for key, value in set_pairs.items():
            flat += [key, value]
        await self._run_retrying(
            scripts.METADATA,
            [self._member, self._id_bytes, self._ttl_arg, len(set_pairs), *flat, *remove],
        )

    async def storage_touch(self) -> bool:
        return bool(await self._run_retrying(scripts.TOUCH, [self._member, self._ttl_arg]))

    async def storage_close(self) -> None:
        if self._owns_source:
            await self._source.aclose(self.kind)

    # The lock scripts compare the holder's token, so each may run twice: taking a lock one
    # already holds succeeds, renewing is idempotent, and a second release finds nothing of
    # its own to delete (the lock object tells that apart from a lost lease by its clock).

    async def _lock_script(self, script: scripts.LuaScript, args: list[Any]) -> bool:
        keys = (self._keys.lock.encode(),)
        return bool(await retrying(lambda: script.run(self._source, keys, args)))

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
            **self._options.keywords(),
        )
