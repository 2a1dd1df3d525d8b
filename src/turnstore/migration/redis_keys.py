"""Shared by the Redis readers: a public redis-py client, SCAN on every primary, pipelines."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

from ..backend import request_answered
from ..errors import BackendUnavailableError, ConfigurationError
from ..info import datetime_from_ms
from ..records import decode_record_items
from ..urls import mask_url
from .base import SourceLayout, SourceSession

__all__ = ["RedisKeysLayout"]

T = TypeVar("T")

#: Seconds one command may wait for its answer unless the reader is given `timeout`.
DEFAULT_TIMEOUT = 10.0
#: Keys asked for per SCAN call, and commands per pipeline.
SCAN_COUNT = 1000
PIPELINE_BATCH = 500
#: Fields of a session hash that hold its times and id, not metadata.
KNOWN_FIELDS = frozenset({"session_id", "created_at", "updated_at"})

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


class RedisKeysLayout(SourceLayout):
    """A layout that keeps a session as a hash (id, times, anything else) and a JSON list."""

    #: Query parameters the layout reads itself (removed before the URL is opened).
    layout_params: tuple[str, ...] = ()

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT, **options: Any) -> None:
        from ..redis.store import RedisStore

        super().__init__(url)
        if not url.split("://", 1)[0].lower().startswith(("redis", "unix")):
            raise ConfigurationError(
                f"--from-layout {self.name} reads a sqlite:// file or a Redis URL, "
                f"not {mask_url(url)!r}"
            )
        redis_url, self.params = _split_layout_params(url, self.layout_params)
        #: Seconds each command (a SCAN, a pipeline) may wait for its answer.
        self.timeout = float(timeout)
        # Only its client is used: a public redis-py client for the URL, whatever topology.
        self._store = RedisStore.from_url(
            redis_url, max_connections=8, timeout=self.timeout, **options
        )

    def client(self) -> Any:
        return self._store.client

    async def answer(self, call: Awaitable[T], what: str) -> T:
        """`await call` (one command or pipeline on the client), within `timeout`.

        The client's own commands have no time limit (the store bounds its calls itself,
        and these do not go through it): a server that does not answer raises
        `BackendUnavailableError` naming the URL.
        """
        try:
            result = await asyncio.wait_for(call, self.timeout)
        except asyncio.TimeoutError as exc:
            raise BackendUnavailableError(
                f"{self.shown_url}: no answer within {self.timeout:g} s ({what})"
            ) from exc
        request_answered()
        return result

    async def scan(self, pattern: str, kind: str) -> AsyncIterator[bytes]:
        """Keys matching `pattern` of type `kind`, with SCAN on every primary."""
        from redis.asyncio.cluster import RedisCluster

        client = self.client()
        if isinstance(client, RedisCluster):
            # Learns the nodes (once); before it there are none.
            await self.answer(client.initialize(), "reading the cluster's nodes")
            for node in client.get_primaries():
                cursor = 0
                while True:
                    cursors, keys = await self.answer(
                        client.scan(
                            cursor, match=pattern, count=SCAN_COUNT, _type=kind, target_nodes=node
                        ),
                        "SCAN",
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
            cursor, keys = await self.answer(
                client.scan(cursor, match=pattern, count=SCAN_COUNT, _type=kind), "SCAN"
            )
            for key in keys:
                yield _bytes(key)
            if int(cursor) == 0:
                return

    async def pipelined(self, calls: Sequence[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """Run (command, args) calls in pipelines of `PIPELINE_BATCH`, in order."""
        client = self.client()
        replies: list[Any] = []
        for start in range(0, len(calls), PIPELINE_BATCH):
            pipe = client.pipeline(transaction=False)
            for name, args in calls[start : start + PIPELINE_BATCH]:
                pipe.execute_command(name, *args)
            replies.extend(await self.answer(pipe.execute(), "a pipeline of reads"))
        return replies

    async def read_keys(
        self, session_id: str, hash_key: bytes, list_key: bytes
    ) -> SourceSession | None:
        """A session kept as a hash (times, other fields) and a list of JSON items.

        Hash fields besides the id and times are carried as metadata when they are text;
        a field that is not is named in `not_carried`.
        """
        from ..records import SessionRecord

        fields_flat, raws, pttl = await self.pipelined(
            [("HGETALL", (hash_key,)), ("LRANGE", (list_key, 0, -1)), ("PTTL", (hash_key,))]
        )
        if isinstance(fields_flat, dict):
            pairs = list(fields_flat.items())
        else:
            pairs = list(zip(fields_flat[::2], fields_flat[1::2], strict=True))
        fields = {_text(k): v for k, v in pairs}
        if not fields and not raws:
            return None
        if int(pttl) < 0 and not fields:
            (pttl,) = await self.pipelined([("PTTL", (list_key,))])
        metadata: dict[str, str] = {}
        not_carried: list[str] = []
        for name, value in fields.items():
            if name in KNOWN_FIELDS:
                continue
            try:
                text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
            except UnicodeDecodeError:
                not_carried.append(f"hash field {name!r} (not UTF-8 text)")
                continue
            if not name:
                not_carried.append("a hash field with an empty name")
                continue
            metadata[name] = text
        items, corrupt = decode_record_items(session_id, list(raws))
        expires = _datetime(time.time() + int(pttl) / 1000) if int(pttl) >= 0 else None
        record = SessionRecord(
            session_id=session_id,
            items=items,
            metadata=metadata,
            created_at=_datetime(_seconds(fields.get("created_at"))),
            updated_at=_datetime(_seconds(fields.get("updated_at"))),
            expires_at=expires,
            corrupt=corrupt,
        )
        return SourceSession(record, tuple(not_carried))

    async def close(self) -> None:
        await self._store.close()
