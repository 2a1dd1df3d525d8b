"""Readers of the layouts `migrate` copies from: ours, the SDK's, openai-agents-redis's.

A reader makes a *plan* (every session, its item count and update time: the totals of the
progress bar and the copying order) and then reads one whole session at a time as a
`SessionRecord`, with undecodable items listed in `corrupt`, never dropped unseen. Readers
only read: the SDK's SQLite file is opened read-only, Redis keys are found with SCAN (every
primary of a cluster), never KEYS.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from ..errors import ConfigurationError
from ..info import datetime_from_ms
from ..records import SessionRecord, decode_record_items, export_session
from ..store import SessionStore, open_store
from ..urls import mask_url
from .context import CommandError, UsageError, sqlite_file
from .inspect import all_sessions

__all__ = [
    "OpenAgentsRedisLayout",
    "OwnLayout",
    "PlannedSession",
    "SdkRedisLayout",
    "SdkSQLiteLayout",
    "SourceLayout",
    "open_source",
]

#: Keys asked for per SCAN call, and commands per pipeline.
SCAN_COUNT = 1000
PIPELINE_BATCH = 500


@dataclass(frozen=True)
class PlannedSession:
    """A session to copy: its id, size and last update (seconds since the epoch)."""

    session_id: str
    item_count: int
    updated: float
    #: Where the reader finds it (keys, for the Redis layouts).
    locator: Any = None


class SourceLayout(ABC):
    """Where `migrate` reads from."""

    #: The layout's name, as `--from-layout` takes it.
    name: str

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def shown_url(self) -> str:
        return mask_url(self.url)

    @abstractmethod
    async def plan(self) -> list[PlannedSession]:
        """Every session of the source."""

    @abstractmethod
    async def read(self, planned: PlannedSession) -> SessionRecord | None:
        """The session's content; None when it is gone since the plan was made."""

    @abstractmethod
    async def close(self) -> None: ...


# -- this package's own layout ---------------------------------------------------------------


class OwnLayout(SourceLayout):
    """A store of this package at any URL `open_store` accepts."""

    name = "own"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.store: SessionStore = open_store(url)

    async def plan(self) -> list[PlannedSession]:
        path = sqlite_file(self.store)
        if path is not None and not await asyncio.to_thread(os.path.exists, path):
            raise CommandError(f"{path} does not exist")
        return [
            PlannedSession(info.session_id, info.item_count, info.updated_at.timestamp())
            for info in await all_sessions(self.store)
        ]

    async def read(self, planned: PlannedSession) -> SessionRecord | None:
        return await export_session(self.store, planned.session_id)

    async def close(self) -> None:
        await self.store.close()


# -- the SDK's SQLiteSession -----------------------------------------------------------------


def _sdk_time(value: Any) -> datetime | None:
    """A time of the SDK's tables (`CURRENT_TIMESTAMP`: UTC `YYYY-MM-DD HH:MM:SS`)."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


class SdkSQLiteLayout(SourceLayout):
    """The tables of the SDK's `SQLiteSession`, read directly from a read-only connection."""

    name = "sdk"

    def __init__(self, url: str) -> None:
        from ..sqlite.connection import parse_sqlite_url
        from ..sqlite.schema import validate_table_name

        super().__init__(url)
        parsed = parse_sqlite_url(url)
        if parsed.path in (":memory:", ""):
            raise UsageError("an in-memory database holds nothing to migrate; name the file")
        self.path = os.path.abspath(parsed.path)
        tables = parsed.table_options
        self.sessions_table = validate_table_name(
            tables.get("sessions_table", "agent_sessions"), "sessions_table"
        )
        self.messages_table = validate_table_name(
            tables.get("messages_table", "agent_messages"), "messages_table"
        )
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if not os.path.exists(self.path):
                raise CommandError(f"{self.path} does not exist")
            # mode=ro: the SDK's file is only read, never given our side tables.
            uri = f"file:{quote(self.path)}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30.0)
            present = {
                name
                for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            for table in (self.sessions_table, self.messages_table):
                if table not in present:
                    conn.close()
                    raise CommandError(
                        f"{self.path} has no table {table!r}: not a database written by the "
                        "SDK's SQLiteSession (or give ?sessions_table=...&messages_table=...)"
                    )
            self._conn = conn
        return self._conn

    async def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        def run() -> list[Any]:
            return self._connect().execute(sql, params).fetchall()

        return await asyncio.to_thread(run)

    async def plan(self) -> list[PlannedSession]:
        s, m = f'"{self.sessions_table}"', f'"{self.messages_table}"'
        rows = await self._query(
            f"SELECT session_id, updated_at, "
            f"(SELECT COUNT(*) FROM {m} WHERE {m}.session_id = {s}.session_id) FROM {s}"
        )
        # Messages whose session row is missing: the SDK reads them all the same.
        rows += await self._query(
            f"SELECT session_id, NULL, COUNT(*) FROM {m} "
            f"WHERE session_id NOT IN (SELECT session_id FROM {s}) GROUP BY session_id"
        )
        planned = []
        for session_id, updated_at, count in rows:
            when = _sdk_time(updated_at)
            planned.append(
                PlannedSession(str(session_id), int(count), when.timestamp() if when else 0.0)
            )
        return planned

    async def read(self, planned: PlannedSession) -> SessionRecord | None:
        s, m = f'"{self.sessions_table}"', f'"{self.messages_table}"'
        sid = planned.session_id

        def run() -> tuple[list[Any], list[Any]]:
            conn = self._connect()
            with conn:  # one read transaction: the row and its messages agree
                row = conn.execute(
                    f"SELECT created_at, updated_at FROM {s} WHERE session_id = ?", (sid,)
                ).fetchall()
                raws = conn.execute(
                    f"SELECT message_data FROM {m} WHERE session_id = ? ORDER BY id", (sid,)
                ).fetchall()
            return row, raws

        row, raws = await asyncio.to_thread(run)
        if not row and not raws:
            return None
        stored = [raw if isinstance(raw, (str, bytes)) else str(raw) for (raw,) in raws]
        items, corrupt = decode_record_items(sid, stored)
        created, updated = (_sdk_time(row[0][0]), _sdk_time(row[0][1])) if row else (None, None)
        return SessionRecord(
            session_id=sid,
            items=items,
            created_at=created,
            updated_at=updated,
            corrupt=corrupt,
        )

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# -- Redis layouts found with SCAN -----------------------------------------------------------

_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


def _glob_escape(text: str) -> str:
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def _split_layout_params(url: str, names: Sequence[str]) -> tuple[str, dict[str, str]]:
    """Take the layout's own query parameters out of a Redis URL (the rest are ours)."""
    base, question, query = url.partition("?")
    if not question:
        return url, {}
    taken: dict[str, str] = {}
    kept: list[tuple[str, str]] = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in names:
            taken[name] = value
        else:
            kept.append((name, value))
    return (f"{base}?{urlencode(kept)}" if kept else base), taken


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")


def _seconds(value: Any) -> float | None:
    """A time the Redis layouts store as seconds since the epoch (int or float text)."""
    if value is None:
        return None
    try:
        seconds = float(_text(value))
    except ValueError:
        return None
    return seconds if seconds == seconds and abs(seconds) < 1e11 else None  # not NaN, sane


def _datetime(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime_from_ms(seconds * 1000)


class RedisLayout(SourceLayout):
    """Shared by the two Redis layouts: a client for the URL, SCAN and pipelines."""

    #: Query parameters the layout reads itself (removed before the URL is parsed).
    layout_params: tuple[str, ...] = ()

    def __init__(self, url: str) -> None:
        from ..redis.clients import ClientSource
        from ..redis.urls import parse_redis_url

        super().__init__(url)
        if not url.split("://", 1)[0].lower().startswith(("redis", "unix")):
            raise UsageError(
                f"--from-layout {self.name} reads a sqlite:// file or a Redis URL, "
                f"not {mask_url(url)!r}"
            )
        redis_url, self.params = _split_layout_params(url, self.layout_params)
        self.config = parse_redis_url(redis_url)
        self._source = ClientSource(config=self.config)

    async def client(self) -> Any:
        return self._source.client()

    async def scan(self, pattern: str, kind: str) -> AsyncIterator[bytes]:
        """Keys matching `pattern` of type `kind`, with SCAN on every primary."""
        from redis.asyncio.cluster import RedisCluster

        client = await self.client()
        if isinstance(client, RedisCluster):
            for node in client.get_primaries():
                cursor = 0
                while True:
                    cursors, keys = await client.scan(
                        cursor, match=pattern, count=SCAN_COUNT, _type=kind, target_nodes=node
                    )
                    # A cluster client answers ({node name: cursor}, keys).
                    cursor = next(iter(cursors.values())) if isinstance(cursors, dict) else cursors
                    for key in keys:
                        yield _bytes(key)
                    if int(cursor) == 0:
                        break
            return
        cursor = 0
        while True:
            cursor, keys = await client.scan(cursor, match=pattern, count=SCAN_COUNT, _type=kind)
            for key in keys:
                yield _bytes(key)
            if int(cursor) == 0:
                return

    async def pipelined(self, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """Run (command, args) calls in pipelines of `PIPELINE_BATCH`, in order."""
        client = await self.client()
        replies: list[Any] = []
        for start in range(0, len(calls), PIPELINE_BATCH):
            pipe = client.pipeline(transaction=False)
            for name, args in calls[start : start + PIPELINE_BATCH]:
                pipe.execute_command(name, *args)
            replies.extend(await pipe.execute())
        return replies

    async def read_keys(
        self, session_id: str, hash_key: bytes, list_key: bytes
    ) -> SessionRecord | None:
        """A session kept as a hash (times) and a list of JSON items."""
        fields_flat, raws, pttl = await self.pipelined(
            [("HGETALL", (hash_key,)), ("LRANGE", (list_key, 0, -1)), ("PTTL", (hash_key,))]
        )
        if isinstance(fields_flat, dict):
            fields = {_text(k): v for k, v in fields_flat.items()}
        else:
            fields = {_text(k): v for k, v in zip(fields_flat[::2], fields_flat[1::2], strict=True)}
        if not fields and not raws:
            return None
        if int(pttl) < 0 and not fields:
            (pttl,) = await self.pipelined([("PTTL", (list_key,))])
        items, corrupt = decode_record_items(session_id, list(raws))
        expires = _datetime(time.time() + int(pttl) / 1000) if int(pttl) >= 0 else None
        return SessionRecord(
            session_id=session_id,
            items=items,
            created_at=_datetime(_seconds(fields.get("created_at"))),
            updated_at=_datetime(_seconds(fields.get("updated_at"))),
            expires_at=expires,
            corrupt=corrupt,
        )

    async def close(self) -> None:
        await self._source.aclose("migrate source")


class SdkRedisLayout(RedisLayout):
    """Keys of the SDK's `RedisSession`: hash `{prefix}:{id}`, list `{prefix}:{id}:messages`."""

    name = "sdk"
    default_prefix = "agents:session"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        prefix = self.config.store_options.get("key_prefix", self.default_prefix)
        if not prefix:
            raise ConfigurationError("key_prefix must not be empty")
        self.prefix = str(prefix)

    async def plan(self) -> list[PlannedSession]:
        hashes = [key async for key in self.scan(f"{_glob_escape(self.prefix)}:*", "hash")]
        calls: list[tuple[str, tuple[Any, ...]]] = []
        for key in hashes:
            calls.append(("HMGET", (key, "session_id", "updated_at")))
            calls.append(("LLEN", (key + b":messages",)))
        replies = await self.pipelined(calls)
        planned = []
        for key, (fields, count) in zip(
            hashes, zip(replies[::2], replies[1::2], strict=True), strict=True
        ):
            session_id, updated = fields
            if session_id is None:
                continue  # a hash under the prefix that RedisSession did not write
            planned.append(
                PlannedSession(
                    _text(session_id),
                    int(count),
                    _seconds(updated) or 0.0,
                    locator=(key, key + b":messages"),
                )
            )
        return planned

    async def read(self, planned: PlannedSession) -> SessionRecord | None:
        hash_key, list_key = planned.locator
        return await self.read_keys(planned.session_id, hash_key, list_key)


class OpenAgentsRedisLayout(RedisLayout):
    """Keys of openai-agents-redis: hash `agent_session:{id}`, list `agent_messages:{id}`."""

    name = "openai-agents-redis"
    layout_params = ("session_prefix", "messages_prefix")

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.session_prefix = self.params.get("session_prefix") or "agent_session"
        self.messages_prefix = self.params.get("messages_prefix") or "agent_messages"

    async def plan(self) -> list[PlannedSession]:
        session_head = f"{self.session_prefix}:".encode()
        messages_head = f"{self.messages_prefix}:".encode()
        ids: dict[bytes, None] = {}
        async for key in self.scan(f"{_glob_escape(self.session_prefix)}:*", "hash"):
            ids[key[len(session_head) :]] = None
        # A list whose hash expired or was never written: the package read it all the same.
        async for key in self.scan(f"{_glob_escape(self.messages_prefix)}:*", "list"):
            ids[key[len(messages_head) :]] = None
        raw_ids = list(ids)
        calls: list[tuple[str, tuple[Any, ...]]] = []
        for raw in raw_ids:
            calls.append(("HGET", (session_head + raw, "updated_at")))
            calls.append(("LLEN", (messages_head + raw,)))
        replies = await self.pipelined(calls)
        return [
            PlannedSession(
                _text(raw),
                int(count),
                _seconds(updated) or 0.0,
                locator=(session_head + raw, messages_head + raw),
            )
            for raw, updated, count in zip(raw_ids, replies[::2], replies[1::2], strict=True)
        ]

    async def read(self, planned: PlannedSession) -> SessionRecord | None:
        hash_key, list_key = planned.locator
        return await self.read_keys(planned.session_id, hash_key, list_key)


def open_source(layout: str, url: str) -> SourceLayout:
    """The reader of `layout` at `url` (no I/O yet); `UsageError` for a pair that cannot be."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if layout == "own":
        return OwnLayout(url)
    if layout == "sdk":
        return SdkSQLiteLayout(url) if scheme == "sqlite" else SdkRedisLayout(url)
    if layout == "openai-agents-redis":
        if scheme == "sqlite":
            raise UsageError("--from-layout openai-agents-redis reads a Redis URL, not sqlite://")
        return OpenAgentsRedisLayout(url)
    raise UsageError(f"unknown layout {layout!r}")  # pragma: no cover - argparse checks it
