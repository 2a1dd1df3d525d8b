"""`delete`, `purge`, `stats` and `reindex`: looking after a store as a whole.

JSON shapes:

- `delete --json`: `{"matched": N, "deleted": N, "dry_run": bool, "missing": [ID, ...]}`
- `purge --json`: `{"expired": N, "removed": N, "dry_run": bool}`
- `stats --json`: `{"sessions", "items", "oldest_update", "newest_update",
  "expiring_within_1h"}`
- `reindex --json`: `{"indexed": N}`
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ..info import SessionInfo
from .context import CommandError, Context, UsageError
from .inspect import all_sessions
from .progress import open_progress
from .render import format_metadata, relative_time, utc_minutes

__all__ = ["StoreStats", "collect_stats", "run_delete", "run_purge", "run_reindex", "run_stats"]

#: "Expiring soon" means within this long.
SOON = timedelta(hours=1)


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _matches(
    info: SessionInfo, metadata: Mapping[str, str], updated_before: datetime | None
) -> bool:
    if any(info.metadata.get(key) != value for key, value in metadata.items()):
        return False
    return updated_before is None or info.updated_at < updated_before


async def run_delete(ctx: Context, args: argparse.Namespace) -> int:
    """Delete the named sessions or those matching the conditions; exit 1 for a missing id."""
    metadata: dict[str, str] = dict(args.meta or [])
    cutoff = (
        datetime.now(timezone.utc) - timedelta(seconds=args.older_than)
        if args.older_than is not None
        else None
    )
    ids: list[str] = list(dict.fromkeys(args.session_ids))
    if not ids and not metadata and cutoff is None:
        raise UsageError(
            "delete needs session IDs or a condition (--meta KEY=VALUE, --older-than AGE); "
            "nothing was deleted"
        )
    ctx.require_directory()
    missing: list[str] = []
    removed: list[str] = []
    matched = deleted = 0
    if ctx.missing_database() is not None:
        missing = ids
    elif ids:
        for session_id in ids:
            info = await ctx.store.get_info(session_id)
            ctx.progress()
            if info is None:
                missing.append(session_id)
            elif _matches(info, metadata, cutoff):
                matched += 1
                if not args.dry_run and await ctx.store.delete_session(session_id):
                    deleted += 1
                    removed.append(session_id)
    else:
        matched = await ctx.store.delete_sessions(
            metadata=metadata or None, updated_before=cutoff, dry_run=args.dry_run
        )
        deleted = 0 if args.dry_run else matched
    if ids and len(missing) == len(ids) and not ctx.json:
        names = ", ".join(repr(session_id) for session_id in missing)
        raise CommandError(f"no session {names} in {ctx.shown_url}")
    for session_id in missing:
        sys.stderr.write(f"turnstore: no session {session_id!r} in {ctx.shown_url}\n")
    if ctx.json:
        ctx.out.json(
            {"matched": matched, "deleted": deleted, "dry_run": args.dry_run, "missing": missing}
        )
    else:
        conditions = []
        if metadata:
            conditions.append(f"metadata {format_metadata(metadata)}")
        if cutoff is not None:
            conditions.append(f"updated before {utc_minutes(cutoff)} UTC")
        which = f" ({', '.join(conditions)})" if conditions else ""
        if args.dry_run:
            ctx.out.line(
                f"Would delete {_plural(matched, 'session')}{which} from {ctx.shown_url} "
                "(dry run: nothing deleted)."
            )
        elif len(removed) == 1:
            ctx.out.line(f"Deleted session {removed[0]!r} from {ctx.shown_url}.")
        else:
            ctx.out.line(f"Deleted {_plural(deleted, 'session')}{which} from {ctx.shown_url}.")
    return 1 if missing else 0


async def run_purge(ctx: Context, args: argparse.Namespace) -> int:
    """Remove expired sessions (or count them) and say how many there were."""
    ctx.require_directory()
    if ctx.missing_database() is not None:
        expired = removed = 0
    elif args.dry_run:
        try:
            expired, removed = await ctx.store.count_expired(), 0
        except NotImplementedError:
            raise CommandError(
                f"{ctx.shown_url}: this store cannot count expired sessions without removing "
                "them; run purge without --dry-run"
            ) from None
    else:
        removed = await ctx.store.purge_expired()
        expired = removed
    if ctx.json:
        ctx.out.json({"expired": expired, "removed": removed, "dry_run": args.dry_run})
    elif args.dry_run:
        ctx.out.line(
            f"Would purge {_plural(expired, 'expired session')} from {ctx.shown_url} "
            "(dry run: nothing removed)."
        )
    else:
        ctx.out.line(f"Purged {_plural(removed, 'expired session')} from {ctx.shown_url}.")
    return 0


async def run_reindex(ctx: Context, args: argparse.Namespace) -> int:
    """Rebuild the store's metadata index with a progress bar; say how many it indexed.

    Calls `store.reindex(progress=...)`, which reports the sessions indexed so far; a store
    opened without `index_metadata` has no index to build (exit 1).
    """
    ctx.require_directory()
    reindex = getattr(ctx.store, "reindex", None)
    if reindex is None or not getattr(ctx.store, "index_metadata", ()):
        raise CommandError(
            f"{ctx.shown_url}: this store keeps no metadata index to rebuild "
            "(name the keys to index in the URL, e.g. ?index_metadata=user_id,tenant)"
        )
    if ctx.missing_database() is not None:
        indexed = 0
    else:
        total = await ctx.store.count_sessions()
        bar = open_progress(sys.stderr if ctx.json else sys.stdout, items=False)
        bar.start(total, 0)

        reported = 0

        def advance(done: int) -> None:
            nonlocal reported
            ctx.progress()  # --timeout bounds one step of the rebuild, not all of it
            bar.advance(int(done) - reported, 0)
            reported = int(done)

        try:
            indexed = int(await reindex(progress=advance))
        finally:
            bar.finish()
    if ctx.json:
        ctx.out.json({"indexed": indexed})
    else:
        ctx.out.line(f"Reindexed {_plural(indexed, 'session')} in {ctx.shown_url}.")
    return 0


@dataclass(frozen=True)
class StoreStats:
    sessions: int
    items: int
    oldest_update: datetime | None
    newest_update: datetime | None
    expiring_soon: int

    def as_json(self) -> dict[str, Any]:
        def iso(when: datetime | None) -> str | None:
            return when.isoformat() if when is not None else None

        return {
            "sessions": self.sessions,
            "items": self.items,
            "oldest_update": iso(self.oldest_update),
            "newest_update": iso(self.newest_update),
            "expiring_within_1h": self.expiring_soon,
        }


async def collect_stats(ctx: Context, now: datetime | None = None) -> StoreStats:
    """Counts over every live session, from the listing alone (no item is read)."""
    now = now or datetime.now(timezone.utc)
    sessions = await all_sessions(ctx.store, ctx=ctx)
    updates = [info.updated_at for info in sessions]
    return StoreStats(
        sessions=len(sessions),
        items=sum(info.item_count for info in sessions),
        oldest_update=min(updates, default=None),
        newest_update=max(updates, default=None),
        expiring_soon=sum(
            1 for info in sessions if info.expires_at is not None and info.expires_at - now <= SOON
        ),
    )


def _when(when: datetime | None) -> str:
    if when is None:
        return "-"
    return f"{utc_minutes(when)} UTC ({relative_time(when)})"


async def run_stats(ctx: Context, args: argparse.Namespace) -> int:
    """Print the store's counts, as aligned lines or a JSON object."""
    ctx.require_directory()
    empty = StoreStats(0, 0, None, None, 0)
    stats = empty if ctx.missing_database() is not None else await collect_stats(ctx)
    if ctx.json:
        ctx.out.json(stats.as_json())
        return 0
    out = ctx.out
    rows = [
        ("sessions", f"{stats.sessions:,}"),
        ("items", f"{stats.items:,}"),
        ("oldest update", _when(stats.oldest_update)),
        ("newest update", _when(stats.newest_update)),
        ("expiring within 1 h", f"{stats.expiring_soon:,}"),
    ]
    out.line(f"{out.style('Store', 'bold')} {out.style(ctx.shown_url, 'bold', 'cyan')}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        out.line(f"  {out.style(name.ljust(width), 'dim')}  {value}")
    return 0
