"""`delete`, `purge` and `stats`: looking after a store as a whole."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ..info import SessionInfo
from ..records import export_session
from ..store import SessionStore
from .context import CommandError, Context
from .inspect import all_sessions
from .render import relative_time, utc_minutes

__all__ = ["StoreStats", "collect_stats", "run_delete", "run_purge", "run_stats"]

#: "Expiring soon" means within this long.
SOON = timedelta(hours=1)
#: Sessions whose items are read at once to count their bytes.
CONCURRENCY = 16


async def run_delete(ctx: Context, args: argparse.Namespace) -> int:
    """Delete one session; exit 1 when there was no such session."""
    if ctx.missing_database() is None and await ctx.store.delete_session(args.session_id):
        ctx.out.line(f"Deleted session {args.session_id!r} from {ctx.shown_url}.")
        return 0
    raise CommandError(f"no session {args.session_id!r} in {ctx.shown_url}")


async def run_purge(ctx: Context, args: argparse.Namespace) -> int:
    """Remove expired sessions and say how many there were."""
    removed = 0 if ctx.missing_database() is not None else await ctx.store.purge_expired()
    noun = "session" if removed == 1 else "sessions"
    ctx.out.line(f"Purged {removed} expired {noun} from {ctx.shown_url}.")
    return 0


@dataclass(frozen=True)
class StoreStats:
    sessions: int
    items: int
    bytes: int
    oldest_update: datetime | None
    newest_update: datetime | None
    expiring_soon: int

    def as_json(self) -> dict[str, Any]:
        def iso(when: datetime | None) -> str | None:
            return when.isoformat() if when is not None else None

        return {
            "sessions": self.sessions,
            "items": self.items,
            "bytes": self.bytes,
            "oldest_update": iso(self.oldest_update),
            "newest_update": iso(self.newest_update),
            "expiring_within_1h": self.expiring_soon,
        }


async def _stored_bytes(store: SessionStore, sessions: list[SessionInfo]) -> int:
    total = 0
    for start in range(0, len(sessions), CONCURRENCY):
        chunk = sessions[start : start + CONCURRENCY]
        records = await asyncio.gather(*(export_session(store, s.session_id) for s in chunk))
        total += sum(record.stored_bytes for record in records if record is not None)
    return total


async def collect_stats(store: SessionStore, now: datetime | None = None) -> StoreStats:
    """Counts over every live session; bytes are those of the stored items."""
    now = now or datetime.now(timezone.utc)
    sessions = await all_sessions(store)
    updates = [info.updated_at for info in sessions]
    return StoreStats(
        sessions=len(sessions),
        items=sum(info.item_count for info in sessions),
        bytes=await _stored_bytes(store, sessions),
        oldest_update=min(updates, default=None),
        newest_update=max(updates, default=None),
        expiring_soon=sum(
            1 for info in sessions if info.expires_at is not None and info.expires_at - now <= SOON
        ),
    )


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    size = float(count)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if size < 1024 or unit == "TiB":
            break
    return f"{size:.1f} {unit} ({count:,} B)"


def _when(when: datetime | None) -> str:
    if when is None:
        return "-"
    return f"{utc_minutes(when)} UTC ({relative_time(when)})"


async def run_stats(ctx: Context, args: argparse.Namespace) -> int:
    """Print the store's counts, as aligned lines or a JSON object."""
    empty = StoreStats(0, 0, 0, None, None, 0)
    stats = empty if ctx.missing_database() is not None else await collect_stats(ctx.store)
    if args.json:
        ctx.out.json(stats.as_json())
        return 0
    out = ctx.out
    rows = [
        ("sessions", f"{stats.sessions:,}"),
        ("items", f"{stats.items:,}"),
        ("stored bytes", _size(stats.bytes)),
        ("oldest update", _when(stats.oldest_update)),
        ("newest update", _when(stats.newest_update)),
        ("expiring within 1 h", f"{stats.expiring_soon:,}"),
    ]
    out.line(f"{out.style('Store', 'bold')} {out.style(ctx.shown_url, 'bold', 'cyan')}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        out.line(f"  {out.style(name.ljust(width), 'dim')}  {value}")
    return 0
