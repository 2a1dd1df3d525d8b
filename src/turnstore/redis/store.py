"""`RedisStore`: pooled connections, defaults, and listing without KEYS.

Every session write also updates its bucket's index (a sorted set of escaped ids by update
time) and, with a TTL, the bucket's expiry set (deadlines), in the same script: the index
lives in the session's slot, so it is exact on standalone and on Cluster alike. Listing
merges the buckets' indexes newest first; counting and purging read the expiry sets, so a
session past its deadline is never reported even before Redis reclaims its keys.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..backend import SessionCopy, SessionWrite
from ..errors import ConfigurationError
from ..info import SessionInfo, SessionPage, datetime_from_ms
from ..items import DEFAULT_MAX_ITEM_BYTES
from ..options import OnCorrupt, resolve_options
from ..store import BaseStore, decode_cursor, encode_cursor
from ..urls import mask_url
from . import scripts, transfer
from .clients import DEFAULT_MAX_CONNECTIONS, AnyRedis, ClientSource
from .keys import BUCKETS, bucket_keys, escape_id, unescape_id, validate_key_prefix
from .retry import BUDGET_OPTIONS, Budget
from .session import RedisSession, _meta_fields
from .urls import parse_redis_url

__all__ = ["RedisStore", "open_redis_store"]

_St = TypeVar("_St", bound="RedisStore")

#: Index entries one listing script looks at per call (bounds the time a script runs).
SCAN_BUDGET = 2000
#: Expired sessions one purge script removes per call.
PURGE_BATCH = 500


@dataclass
class _Candidate:
    score: int
    member: bytes
    info: SessionInfo

    @property
    def key(self) -> tuple[int, bytes]:
        return (self.score, self.member)


def _b(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


class RedisStore(BaseStore):
    """The Redis session store: hands out sessions sharing its client and defaults."""

    kind = "RedisStore"

    #: The class `session()` hands out (a subclass's `__init__` runs for each).
    session_class: type[RedisSession] = RedisSession

    def __init__(
        self,
        client: AnyRedis | None,
        *,
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
        connection: ClientSource | None = None,
    ) -> None:
        """`client` is injected (never closed here): `timeout` (seconds one call may take in
        all, default 10) and `retries` (default 3, used only when the client does not retry
        by itself) bound every call on it. `from_url` passes a `connection` that the store
        opened and owns instead, with the URL's time budget."""
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
        if connection is None:
            if client is None:
                raise ConfigurationError("RedisStore needs a client (or use RedisStore.from_url)")
            budget = Budget.from_options({"timeout": timeout, "retries": retries})
            connection = ClientSource(client=client, budget=budget)
        super().__init__()
        self._source = connection
        self.key_prefix = validate_key_prefix(key_prefix)
        self.options = options
        self._buckets = [bucket_keys(self.key_prefix, b) for b in range(BUCKETS)]

    @classmethod
    def from_url(
        cls: type[_St], url: str, *, max_connections: int | None = None, **options: Any
    ) -> _St:
        """A store that owns a pool of `max_connections` (default 64) for `url`.

        Query parameters set options; keyword options win. Callers beyond the pool's size
        wait for a free connection (within the call's time budget) instead of failing.
        `timeout`, `retries`, `socket_timeout` and `socket_connect_timeout` set the time
        budget of every call (see docs/production.md).
        """
        config = parse_redis_url(url)
        session_options, extra = resolve_options(
            [config.session_options, options],
            extra={"key_prefix", *BUDGET_OPTIONS},
            context=mask_url(url),
        )
        key_prefix = extra.pop("key_prefix", None) or config.store_options.get("key_prefix")
        limit = (
            max_connections
            if max_connections is not None
            else config.store_options.get("max_connections", DEFAULT_MAX_CONNECTIONS)
        )
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigurationError(f"max_connections must be a positive int, not {limit!r}")
        return cls(
            None,
            key_prefix=key_prefix or "turnstore",
            connection=ClientSource(
                config=config, budget=config.budget(extra), max_connections=limit
            ),
            **session_options.keywords(),
        )

    def __repr__(self) -> str:
        return f"RedisStore({self._source.describe()!r}, key_prefix={self.key_prefix!r})"

    @property
    def client(self) -> AnyRedis:
        """The redis-py client serving the running event loop."""
        self._check_open()
        return self._source.client()  # type: ignore[no-any-return]

    @property
    def connection(self) -> ClientSource:
        """Where this store's clients come from: what `session()` hands to its sessions."""
        return self._source

    def session(self, session_id: str, **overrides: Any) -> RedisSession:
        """A session sharing this store's connections and defaults (no I/O)."""
        self._check_open()
        options, _ = resolve_options([overrides], base=self.options)
        return self.session_class(
            session_id,
            key_prefix=self.key_prefix,
            connection=self._source,
            owns_connection=False,
            **options.keywords(),
        )

    async def get_info(self, session_id: str) -> SessionInfo | None:
        return await self.session(session_id).get_info()

    async def delete_session(self, session_id: str) -> bool:
        return await self.session(session_id).storage_delete()

    async def ping(self) -> bool:
        self._check_open()
        return await self._source.ping()

    async def storage_close(self) -> None:
        await self._source.aclose()

    # -- many sessions per round trip (export, import, migrate; see transfer.py) ------------

    async def snapshot_sessions(self, session_ids: Sequence[str]) -> list[SessionCopy | None]:
        """For each id, its `SessionCopy` or None; a request (one round trip per node) per
        256 sessions, each session read by its own atomic scripts. The TTL is not refreshed."""
        self._check_open()
        return await transfer.snapshot_sessions(self, session_ids)

    async def replace_sessions(self, writes: Sequence[SessionWrite]) -> None:
        """Each write as one atomic replace script of its session, a request per 256."""
        self._check_open()
        await transfer.replace_sessions(self, writes)

    # -- bucket scripts ---------------------------------------------------------------------

    async def _run_buckets(
        self,
        script: scripts.LuaScript,
        buckets: Sequence[int],
        args: Callable[[int], list[Any]],
    ) -> list[Any]:
        """Run `script` on each bucket with `args(bucket)`, pipelined (a round trip a node).

        The bucket scripts only read, except purge, which may run twice: the whole round is
        sent again when its outcome is unknown or a Cluster slot is moving.
        """
        commands = [
            self._source.script_command(
                script,
                (self._buckets[bucket].index, self._buckets[bucket].expiry),
                [self._buckets[bucket].session_base, *args(bucket)],
            )
            for bucket in buckets
        ]
        replies = await self._source.send(commands)
        self._source.raise_errors(replies)
        return replies

    # -- listing ---------------------------------------------------------------------------

    def _info_from(self, found: Sequence[Any], now_ms: int) -> _Candidate:
        member, score, meta, count, pttl = found
        fields, metadata = _meta_fields(meta)
        session_id = fields.get("id") or unescape_id(_b(member).decode("utf-8"))
        updated = int(float(score))  # the index score is the update time
        info = SessionInfo(
            session_id=session_id,
            created_at=datetime_from_ms(int(fields.get("created", updated))),
            updated_at=datetime_from_ms(updated),
            item_count=int(count),
            expires_at=datetime_from_ms(now_ms + int(pttl)) if int(pttl) >= 0 else None,
            metadata=metadata,
        )
        return _Candidate(score=updated, member=_b(member), info=info)

    async def list_sessions(
        self,
        *,
        limit: int = 100,
        cursor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> SessionPage:
        """Live sessions, most recently updated first, `limit` per page.

        The cursor is the (update time, id) of the last session returned: a session that is
        not written meanwhile is neither skipped nor repeated by later pages.
        """
        self._check_open()
        wanted = self._check_page_args(limit, metadata)
        filters: list[str] = [part for pair in wanted.items() for part in pair]
        start: tuple[str, bytes] = ("", b"")
        if cursor is not None:
            score, session_id = decode_cursor(cursor)
            start = (str(score), escape_id(session_id).encode("utf-8"))
        frontier: dict[int, tuple[str, bytes]] = dict.fromkeys(range(BUCKETS), start)
        active = list(range(BUCKETS))
        per_bucket = max(2, math.ceil(2 * limit / BUCKETS))
        candidates: list[_Candidate] = []
        open_buckets: set[int] = set()
        now_ms = await self._server_time_ms()
        while active:

            def list_args(bucket: int, want: int = per_bucket) -> list[Any]:
                return self._list_args(frontier[bucket], want, filters)

            replies = await self._run_buckets(scripts.LIST_BUCKET, active, list_args)
            for bucket, (exhausted, last_score, last_member, found) in zip(
                active, replies, strict=True
            ):
                frontier[bucket] = (_b(last_score).decode(), _b(last_member))
                candidates.extend(self._info_from(entry, now_ms) for entry in found)
                if exhausted:
                    open_buckets.discard(bucket)
                else:
                    open_buckets.add(bucket)
            candidates.sort(key=lambda c: c.key, reverse=True)
            threshold = candidates[limit - 1].key if len(candidates) >= limit else None
            active = sorted(
                b
                for b in open_buckets
                if threshold is None or (int(float(frontier[b][0])), frontier[b][1]) > threshold
            )
            per_bucket = min(per_bucket * 4, limit)
        page = candidates[:limit]
        more = len(candidates) > limit
        if not more and open_buckets and page:
            # Buckets not read to their end may still hold older matches: look for one.
            probe_from = (str(page[-1].score), page[-1].member)
            probes = await self._run_buckets(
                scripts.LIST_BUCKET,
                sorted(open_buckets),
                lambda bucket: self._list_args(probe_from, 1, filters),
            )
            more = any(found for (_, _, _, found) in probes)
        next_cursor = (
            encode_cursor(page[-1].score, page[-1].info.session_id) if more and page else None
        )
        return SessionPage(sessions=[c.info for c in page], next_cursor=next_cursor)

    @staticmethod
    def _list_args(position: tuple[str, bytes], want: int, filters: list[str]) -> list[Any]:
        return [position[0], position[1], want, SCAN_BUDGET, *filters]

    async def _server_time_ms(self) -> int:
        seconds, micros = await self._source.execute("TIME")
        return int(seconds) * 1000 + int(micros) // 1000

    async def count_sessions(self) -> int:
        """Live sessions (those past their deadline are not counted)."""
        self._check_open()
        counts = await self._run_buckets(scripts.COUNT_BUCKET, range(BUCKETS), lambda b: [])
        return sum(int(c) for c in counts)

    async def count_expired(self) -> int:
        """How many sessions `purge_expired` would remove now (nothing is changed)."""
        self._check_open()
        counts = await self._run_buckets(scripts.EXPIRED_BUCKET, range(BUCKETS), lambda b: [])
        return sum(int(c) for c in counts)

    async def purge_expired(self) -> int:
        """Remove what expired sessions left behind; returns how many sessions it removed."""
        self._check_open()
        removed = 0
        buckets = list(range(BUCKETS))
        while buckets:
            replies = await self._run_buckets(
                scripts.PURGE_BUCKET, buckets, lambda b: [PURGE_BATCH]
            )
            removed += sum(int(r[0]) for r in replies)
            buckets = [b for b, r in zip(buckets, replies, strict=True) if int(r[1])]
        return removed

    async def session_ids(self) -> list[str]:
        """Every live session id (unordered); reads the index page by page, never KEYS."""
        self._check_open()
        ids: list[str] = []
        positions = dict.fromkeys(range(BUCKETS), 0)
        while positions:
            order = sorted(positions)
            replies = await self._run_buckets(
                scripts.IDS_BUCKET, order, lambda bucket: [positions[bucket], 500]
            )
            for bucket, reply in zip(order, replies, strict=True):
                ids.extend(unescape_id(_b(m).decode("utf-8")) for m in reply[1:])
                if int(reply[0]):
                    positions[bucket] = int(reply[0])
                else:
                    del positions[bucket]
        return ids


def open_redis_store(url: str, **options: Any) -> RedisStore:
    """The `open_store` provider for redis, rediss, unix, redis+sentinel, redis+cluster."""
    try:
        return RedisStore.from_url(url, **options)
    except TypeError as exc:  # an unknown keyword option
        raise ConfigurationError(f"{exc} (opening {mask_url(url)!r})") from None
