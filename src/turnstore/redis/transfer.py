"""Many sessions per round trip: the Redis form of `snapshot_sessions` and `replace_sessions`.

Export, import and migrate move whole sessions. One session at a time costs a round trip per
session and per step; here each step for a batch of sessions is one request through the
transport (`ClientSource.send`: one round trip per node, replies and errors in place, resent
within the time budget when the outcome is unknown). Each session is still its own atomic
script, the same scripts `RedisSession` runs (snapshot, info, replace), so nothing here is a
second path for the data: only the batching differs. On Cluster the transport groups the
commands by node; every command touches one session, hence one slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..backend import SessionCopy, SessionWrite
from ..options import SessionOptions, validate_session_id
from ..store import gather_bounded
from . import scripts
from .session import copy_of, replace_args

if TYPE_CHECKING:
    from .store import RedisStore

__all__ = ["replace_sessions", "snapshot_sessions"]

#: Sessions per request; a batch larger than this goes as several requests...
SEND_BATCH = 256
#: ...with at most this many in flight at once.
SENDS_IN_FLIGHT = 4


def _chunks(count: int) -> list[range]:
    return [range(start, min(start + SEND_BATCH, count)) for start in range(0, count, SEND_BATCH)]


def _script_keys(store: RedisStore, session_id: str) -> tuple[tuple[bytes, ...], bytes]:
    return store.encoded_script_keys(validate_session_id(session_id))


async def snapshot_sessions(
    store: RedisStore, session_ids: Sequence[str]
) -> list[SessionCopy | None]:
    """Each session's snapshot script (its items, metadata, times and expiry, read in one
    step), many sessions in one request per batch."""
    source = store.connection
    prepared = [_script_keys(store, session_id) for session_id in session_ids]

    async def read(chunk: range) -> list[SessionCopy | None]:
        commands: list[Any] = []
        for position in chunk:
            keys, member = prepared[position]
            commands.append(source.script_command(scripts.SNAPSHOT, keys, [member]))
        replies = await source.send(commands)
        source.raise_errors(replies)
        return [
            copy_of(session_ids[position], reply)
            for position, reply in zip(chunk, replies, strict=True)
        ]

    batches = await gather_bounded(
        [read(chunk) for chunk in _chunks(len(session_ids))], SENDS_IN_FLIGHT
    )
    return [copy for batch in batches for copy in batch]


async def replace_sessions(store: RedisStore, writes: Sequence[SessionWrite]) -> None:
    """One replace script per session (atomic per session), one request per batch."""
    source = store.connection
    options = store.options
    default_ttl = b"" if options.ttl_ms is None else b"%d" % options.ttl_ms
    max_items = b"" if options.max_items is None else b"%d" % options.max_items
    commands: list[Any] = []
    for write in writes:
        keys, member = _script_keys(store, write.session_id)
        ttl = default_ttl
        if write.ttl is not None:
            ttl_ms = SessionOptions(ttl=write.ttl).ttl_ms  # validated as a session's ttl
            ttl = b"%d" % ttl_ms if ttl_ms is not None else b""
        args = replace_args(
            member,
            write.session_id.encode("utf-8"),
            ttl,
            max_items,
            write.encoded,
            write.metadata,
            write.times,
            store.index_metadata,
        )
        commands.append(source.script_command(scripts.REPLACE, keys, args))

    async def send(chunk: range) -> None:
        replies = await source.send([commands[position] for position in chunk])
        source.raise_errors(replies)

    await gather_bounded([send(chunk) for chunk in _chunks(len(commands))], SENDS_IN_FLIGHT)
