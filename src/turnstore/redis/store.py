"""`RedisStore`: pooled connections, defaults, and listing without KEYS.

Every session write also updates its bucket's index (a sorted set of escaped ids by update
time) and, with a TTL, the bucket's expiry set (deadlines), in the same script: the index
lives in the session's slot, so it is exact on standalone and on Cluster alike. Listing
merges the buckets' indexes newest first; counting and purging read the expiry sets, so a
session past its deadline is never reported even before Redis reclaims its keys.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, TypeVar

from redis.exceptions import ResponseError, SlotNotCoveredError

from ..backend import SessionCopy, SessionWrite, validate_index_metadata
from ..errors import BackendUnavailableError, ConfigurationError
from ..info import SessionInfo, SessionPage, datetime_from_ms
from ..items import DEFAULT_MAX_ITEM_BYTES
from ..options import OnCorrupt, resolve_options
from ..store import BaseStore, Progress, decode_cursor, deletion_filters, encode_cursor
from ..urls import mask_url
from . import retry, scripts, transfer
from .clients import DEFAULT_MAX_CONNECTIONS, AnyRedis, ClientSource
from .keys import (
    BucketKeys,
    SessionKeys,
    bucket_count,
    bucket_keys,
    bucket_of,
    encode_bucket,
    encoded_script_keys,
    escape_id,
    session_keys,
    unescape_id,
    validate_key_prefix,
    value_part,
)
from .retry import BUDGET_OPTIONS, Budget
from .session import RedisSession, _meta_fields
from .urls import parse_redis_url

__all__ = ["RedisStore", "open_redis_store"]

_St = TypeVar("_St", bound="RedisStore")
_T = TypeVar("_T")

#: Index entries one listing script looks at per call (bounds the time a script runs).
SCAN_BUDGET = 2000
#: Index entries a listing filtered on unindexed keys only looks at per server and call.
UNINDEXED_SCAN = 20_000
#: Expired sessions one purge script removes per call.
PURGE_BATCH = 500
#: Sessions `delete_sessions` deletes per round trip.
DELETE_PAGE = 200
#: Buckets per round trip of `reindex`, and sessions per bucket and round.
REINDEX_BUCKETS = 128
REINDEX_COUNT = 100


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
        index_metadata: Sequence[str] = (),
        connection: ClientSource | None = None,
        **unknown: NoReturn,
    ) -> None:
        """`client` is injected (never closed here): `timeout` (seconds one call may take in
        all, default 10) and `retries` (default 3, used only when the client does not retry
        by itself) bound every call on it. `index_metadata`: the metadata keys a listing
        filters on through an index (see `list_sessions`). `from_url` passes a
        `connection` that the store opened and owns instead, with the URL's time budget.
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
        if connection is None:
            if client is None:
                raise ConfigurationError("RedisStore needs a client (or use RedisStore.from_url)")
            budget = Budget.from_options({"timeout": timeout, "retries": retries})
            connection = ClientSource(client=client, budget=budget)
        super().__init__()
        self._source = connection
        self.key_prefix = validate_key_prefix(key_prefix)
        self.options = options
        self.index_metadata = validate_index_metadata(index_metadata)
        self._bucket_count = bucket_count(connection.cluster)
        self._buckets = [bucket_keys(self.key_prefix, b) for b in range(self._bucket_count)]
        self._every_bucket = _Group.of(self._buckets, range(self._bucket_count))
        # The bucket keys as bytes, for the many-sessions paths of transfer.py.
        self._encoded_buckets = [encode_bucket(b) for b in self._buckets]
        self._cluster_groups: tuple[Any, tuple[str, ...], list[_Group]] | None = None

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
            extra={"key_prefix", "index_metadata", *BUDGET_OPTIONS},
            context=f"{cls.__name__}.from_url({mask_url(url)!r}, ...)",
        )
        key_prefix = extra.pop("key_prefix", None) or config.store_options.get("key_prefix")
        index_metadata = extra.pop("index_metadata", None)
        if index_metadata is None:
            index_metadata = config.store_options.get("index_metadata", ())
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
            index_metadata=index_metadata,
            connection=ClientSource(
                config=config, budget=config.budget(extra), max_connections=limit
            ),
            **session_options.keywords(),
        )

    def __repr__(self) -> str:
        return f"RedisStore({self._source.describe()!r}, key_prefix={self.key_prefix!r}" + (
            f", index_metadata={self.index_metadata!r})" if self.index_metadata else ")"
        )

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
        options, _ = resolve_options(
            [overrides], base=self.options, context=f"{type(self).__name__}.session(...)"
        )
        return self.session_class(
            session_id,
            key_prefix=self.key_prefix,
            connection=self._source,
            owns_connection=False,
            index_metadata=self.index_metadata,
            **options.keywords(),
        )

    def keys_of(self, session_id: str) -> SessionKeys:
        """The Redis keys of a session of this store (no I/O)."""
        return session_keys(self.key_prefix, session_id, self._bucket_count)

    def encoded_script_keys(self, session_id: str) -> tuple[tuple[bytes, ...], bytes]:
        """`keys_of(session_id).script_keys` and its member, as bytes (no I/O): what a
        session script of a batch receives, built from the store's bucket keys."""
        count = self._bucket_count
        bucket = self._encoded_buckets[0 if count == 1 else bucket_of(session_id, count)]
        return encoded_script_keys(bucket, session_id)

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

    def _bucket_command(self, script: scripts.LuaScript, bucket: int, args: Sequence[Any]) -> Any:
        keys = self._buckets[bucket]
        return self._source.script_command(
            script, (keys.index, keys.expiry, keys.indexed), [keys.session_base, *args]
        )

    async def _run_buckets(
        self,
        script: scripts.LuaScript,
        buckets: Sequence[int],
        args: Callable[[int], list[Any]],
    ) -> list[Any]:
        """Run `script` on each bucket with `args(bucket)`, pipelined (a round trip a node).

        The bucket scripts only read, except purge and reindex, which may run twice: the
        whole round is sent again when its outcome is unknown or a Cluster slot is moving.
        """
        commands = [self._bucket_command(script, bucket, args(bucket)) for bucket in buckets]
        replies = await self._source.send(commands)
        self._source.raise_errors(replies)
        return replies

    # -- node scripts -----------------------------------------------------------------------

    async def _groups(self) -> list[_Group]:
        """The buckets by the server that holds them: one group off Cluster; on Cluster one
        per primary, by the client's slot map (kept until the primaries change or a node
        script finds a bucket gone from its node)."""
        if not self._source.cluster:
            return [self._every_bucket]
        client = await self._source.ready_client()
        primaries = tuple(sorted(node.name for node in client.get_primaries()))
        cached = self._cluster_groups
        if cached is not None and cached[0] is client and cached[1] == primaries:
            return cached[2]
        by_node: dict[str, list[int]] = {}
        try:
            for bucket, keys in enumerate(self._buckets):
                node = client.get_node_from_key(keys.index)
                by_node.setdefault(node.name if node is not None else "", []).append(bucket)
        except SlotNotCoveredError as error:
            raise BackendUnavailableError(
                f"the Cluster at {self._source.where} does not serve every slot: {error}"
            ) from error
        groups = [_Group.of(self._buckets, buckets) for _, buckets in sorted(by_node.items())]
        self._cluster_groups = (client, primaries, groups)
        return groups

    async def _run_nodes(
        self,
        script: scripts.LuaScript,
        groups: Sequence[_Group],
        args: Callable[[_Group], list[Any]],
    ) -> list[Any]:
        """Run a node script on each group's server with `args(group)`, concurrently: one
        round trip each. Raises `retry.StartOver` when a Cluster slot left the node it was
        thought to be on; the caller starts over (see `_on_every_node`)."""
        replies = await asyncio.gather(
            *(
                self._source.send_routed(
                    group.route,
                    self._source.script_command(
                        script, (), [self.key_prefix, group.names, *args(group)]
                    ),
                )
                for group in groups
            )
        )
        moved = [
            group
            for group, reply in zip(groups, replies, strict=True)
            if isinstance(reply, ResponseError) and "non local key" in str(reply)
        ]
        if moved:
            # A script may reach only the keys its node holds. The moved buckets are touched
            # through redis-py's key routing, which follows the redirections and updates its
            # slot map; the groups are then made again from that map.
            touch = [("EXISTS", self._buckets[b].index) for g in moved for b in g.buckets]
            await self._source.send(touch)
            self._cluster_groups = None
            raise retry.StartOver(f"{len(moved)} node(s) no longer held all their buckets")
        self._source.raise_errors(replies)
        return list(replies)

    async def _on_every_node(self, work: Callable[[list[_Group]], Awaitable[_T]], what: str) -> _T:
        """`work(groups)` within one call's time budget, started over (by the retry module,
        the one owner of waits) when Cluster slots moved meanwhile or are moving: a slot
        being migrated stays with its node until the move ends."""

        async def operation() -> _T:
            return await work(await self._groups())

        return await retry.run_operation(operation, self._source.budget, self._source.where, what)

    # -- listing ---------------------------------------------------------------------------

    async def list_sessions(
        self,
        *,
        limit: int = 100,
        cursor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> SessionPage:
        """Live sessions, most recently updated first, `limit` per page.

        The cursor is the (update time, id) of the last session returned: a session that is
        not written meanwhile is neither skipped nor repeated by later pages. Without
        `metadata`, or when it names a key of `index_metadata`, a page costs the same
        whatever the number of sessions in the store. A filter on unindexed keys only is a
        bounded scan: one call looks at about `UNINDEXED_SCAN` sessions per server at most,
        and may return fewer than `limit` sessions (even none) with a `next_cursor`.
        """
        self._check_open()
        wanted = self._check_page_args(limit, metadata)
        start = _START
        if cursor is not None:
            score, session_id = decode_cursor(cursor)
            start = (str(score), escape_id(session_id).encode("utf-8"))
        return await self._on_every_node(
            lambda groups: self._page(groups, limit, start, wanted), "a page of sessions"
        )

    async def _page(
        self,
        groups: list[_Group],
        limit: int,
        start: tuple[str, bytes],
        wanted: dict[str, str],
    ) -> SessionPage:
        # The merge: each server returns its newest `limit + 1` matches after its position
        # (or fewer, when its scan budget ran out first); servers whose position is still
        # newer than the page's last candidate go on reading.
        indexed = next((key for key in wanted if key in self.index_metadata), None)
        suffix = "index" if indexed is None else f"v:{value_part(indexed, wanted[indexed])}"
        filters = [part for pair in wanted.items() for part in pair]
        details = b"1" if len(groups) == 1 else b"0"  # else a second round, for the page only
        frontier = dict.fromkeys(groups, start)
        active = list(groups)
        rows: list[_Row] = []
        rounds = 0
        while active:
            replies = await self._run_nodes(
                scripts.LIST_NODE,
                active,
                lambda g: [suffix, *frontier[g], limit + 1, SCAN_BUDGET, details, *filters],
            )
            for group, (exhausted, last_score, last_member, found, now) in zip(
                active, replies, strict=True
            ):
                frontier[group] = (_b(last_score).decode(), _b(last_member))
                rows.extend(_Row.of(group, entry, int(now)) for entry in found)
                if int(exhausted):
                    del frontier[group]
            rows.sort(key=lambda row: row.key, reverse=True)
            threshold = rows[limit].key if len(rows) > limit else None
            active = [
                g for g in frontier if threshold is None or _position(frontier[g]) > threshold
            ]
            rounds += 1
            if active and indexed is None and wanted and rounds * SCAN_BUDGET >= UNINDEXED_SCAN:
                # A bounded scan stops where every server has been read down to.
                stop = max(_position(frontier[g]) for g in active)
                rows = [row for row in rows if row.key > stop]
                page = rows[:limit]
                last = page[-1].key if len(rows) > limit else stop
                return await self._finished(page, last, details == b"1")
        page = rows[:limit]
        return await self._finished(
            page, page[-1].key if len(rows) > limit else None, details == b"1"
        )

    async def _finished(
        self, page: list[_Row], last: tuple[float, bytes] | None, with_details: bool
    ) -> SessionPage:
        """The page of `page`'s sessions, their details read now unless they came with
        them, and the cursor after `last` (None: the last page)."""
        if not with_details and page:
            by_group: dict[_Group, list[_Row]] = {}
            for row in page:
                by_group.setdefault(row.group, []).append(row)
            groups = list(by_group)
            replies = await self._run_nodes(
                scripts.DETAILS_NODE,
                groups,
                lambda g: [part for row in by_group[g] for part in (row.tag, row.member)],
            )
            for group, (now, details) in zip(groups, replies, strict=True):
                for row, detail in zip(by_group[group], details, strict=True):
                    if detail:
                        meta, count, pttl = detail
                        row.info = _info(row.member, row.score, meta, count, pttl, int(now))
        sessions = [row.info for row in page if row.info is not None]
        next_cursor = None
        if last is not None:
            next_cursor = encode_cursor(int(last[0]), unescape_id(last[1].decode("utf-8")))
        return SessionPage(sessions=sessions, next_cursor=next_cursor)

    async def count_sessions(self) -> int:
        """Live sessions (those past their deadline are not counted): one call per server,
        whatever their number."""
        self._check_open()

        async def count(groups: list[_Group]) -> int:
            return sum(int(c) for c in await self._run_nodes(scripts.COUNT_NODE, groups, _none))

        return await self._on_every_node(count, "counting the sessions")

    async def count_expired(self) -> int:
        """How many sessions `purge_expired` would remove now (nothing is changed)."""
        self._check_open()
        counts = await self._run_buckets(
            scripts.EXPIRED_BUCKET, range(self._bucket_count), lambda b: []
        )
        return sum(int(c) for c in counts)

    async def purge_expired(self) -> int:
        """Remove what expired sessions left behind; returns how many sessions it removed.

        Writes also clean up after a few expired sessions of their bucket as they go, so the
        index stays near the live sessions without this; it is an immediate sweep."""
        self._check_open()
        removed = 0
        buckets = list(range(self._bucket_count))
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
        positions = dict.fromkeys(range(self._bucket_count), 0)
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

    # -- bulk operations -------------------------------------------------------------------

    async def delete_sessions(
        self,
        *,
        metadata: Mapping[str, str] | None = None,
        updated_before: datetime | None = None,
        dry_run: bool = False,
    ) -> int:
        """Delete every live session matching all the given conditions; returns how many.

        Pages through the index (the value index when `metadata` names an indexed key)
        from `updated_before` down, deleting each page's sessions in one round trip, each
        session in one atomic step. Interrupted, it can simply be called again. A session
        written again while this runs may or may not be deleted.
        """
        self._check_open()
        wanted = deletion_filters(metadata, updated_before)
        cursor = None
        if updated_before is not None:
            # Just after (updated_before, "") newest first: every session updated before it.
            cursor = encode_cursor(math.ceil(updated_before.timestamp() * 1000), "")
        count = 0
        while True:
            page = await self.list_sessions(
                limit=DELETE_PAGE, cursor=cursor, metadata=wanted or None
            )
            if dry_run:
                count += len(page.sessions)
            elif page.sessions:
                commands = []
                for info in page.sessions:
                    keys = self.keys_of(info.session_id)
                    commands.append(
                        self._source.script_command(scripts.CLEAR, keys.script_keys, [keys.member])
                    )
                replies = await self._source.send(commands)
                self._source.raise_errors(replies)
                count += sum(int(reply) for reply in replies)
            cursor = page.next_cursor
            if cursor is None:
                return count

    async def reindex(self, *, progress: Progress | None = None) -> int:
        """Index every session by its values of `index_metadata` (and drop the entries of
        keys no longer named there); returns how many sessions' entries this call changed
        (0 on a complete index).

        Resumable: it keeps its position per bucket under `<prefix>:reindex`, so a run that
        was interrupted goes on from there (with the same `index_metadata`; a different one
        starts over). `progress(done)` is called after each round of buckets with the count
        so far. Sessions written meanwhile by a store with the same `index_metadata` index
        themselves. It reads every session's indexed fields: a walk of the whole store.
        """
        self._check_open()
        key = f"{self.key_prefix}:reindex"
        wanted = ",".join(self.index_metadata)
        state = {
            _b(name).decode(): _b(value).decode()
            for name, value in _pairs(await self._source.execute("HGETALL", key))
        }
        if state.get("keys") != wanted:
            state = {"keys": wanted}
            await self._source.send([("DEL", key), ("HSET", key, "keys", wanted)])
        positions = {
            bucket: state.get(f"b{bucket}", "0")
            for bucket in range(self._bucket_count)
            if state.get(f"b{bucket}") != "end"
        }
        done = 0
        while positions:
            order = sorted(positions)[:REINDEX_BUCKETS]
            replies = await self._run_buckets(
                scripts.REINDEX_BUCKET,
                order,
                lambda b: [positions[b], REINDEX_COUNT, *self.index_metadata],
            )
            update: list[Any] = []
            for bucket, (position, visited) in zip(order, replies, strict=True):
                done += int(visited)
                position = _b(position).decode()
                if position == "0":
                    del positions[bucket]
                    update += [f"b{bucket}", "end"]
                else:
                    positions[bucket] = position
                    update += [f"b{bucket}", position]
            await self._source.execute("HSET", key, *update)
            if progress is not None:
                progress(done)
        await self._source.execute("DEL", key)
        return done


@dataclass(frozen=True)
class _Group:
    """Buckets that one server holds, as the node scripts take them."""

    buckets: tuple[int, ...]
    names: str  # "0003,0042,...": the hash tags' bucket numbers
    route: str  # a key of the first bucket: where the group's server is found

    @classmethod
    def of(cls, keys: Sequence[BucketKeys], buckets: Sequence[int]) -> _Group:
        return cls(
            buckets=tuple(buckets),
            names=",".join(f"{b:04d}" for b in buckets),
            route=keys[buckets[0]].index,
        )


@dataclass
class _Row:
    """A session a listing found: where, and its details once read."""

    group: _Group
    tag: bytes
    member: bytes
    score: int
    info: SessionInfo | None

    @property
    def key(self) -> tuple[int, bytes]:
        return (self.score, self.member)

    @classmethod
    def of(cls, group: _Group, entry: Sequence[Any], now: int) -> _Row:
        tag, member, score = _b(entry[0]), _b(entry[1]), int(entry[2])
        info = _info(member, score, entry[3], entry[4], entry[5], now) if len(entry) > 3 else None
        return cls(group=group, tag=tag, member=member, score=score, info=info)


#: A listing's start: newest first from the very newest.
_START: tuple[str, bytes] = ("", b"")


def _position(frontier: tuple[str, bytes]) -> tuple[float, bytes]:
    """Where a server's merge stands, comparable with a row's key (newest first)."""
    return (math.inf if frontier[0] == "" else int(float(frontier[0])), frontier[1])


def _none(group: _Group) -> list[Any]:
    return []


def _pairs(flat: Any) -> list[tuple[Any, Any]]:
    """A HGETALL reply (a dict on RESP3, a flat list on RESP2) as pairs."""
    if isinstance(flat, dict):
        return list(flat.items())
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def _info(member: bytes, score: int, meta: Any, count: Any, pttl: Any, now: int) -> SessionInfo:
    fields, metadata = _meta_fields(meta)
    session_id = fields.get("id") or unescape_id(member.decode("utf-8"))
    return SessionInfo(
        session_id=session_id,
        created_at=datetime_from_ms(int(fields.get("created", score))),
        updated_at=datetime_from_ms(score),  # the index score is the update time
        item_count=int(count),
        expires_at=datetime_from_ms(now + int(pttl)) if int(pttl) >= 0 else None,
        metadata=metadata,
    )


def open_redis_store(url: str, **options: Any) -> RedisStore:
    """The `open_store` provider for redis, rediss, unix, redis+sentinel, redis+cluster."""
    return RedisStore.from_url(url, **options)
