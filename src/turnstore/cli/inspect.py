"""`list` and `show`: read-only views of a store (SQLite files are opened read-only).

JSON shapes:

- `list --json`: `{"sessions": [SESSION, ...], "next_cursor": "..." | null}`, where SESSION is
  `{"session_id", "item_count", "created_at", "updated_at", "expires_at", "metadata"}`;
  with `--all`, every session and `next_cursor` null.
- `show --json`: the session's items, a JSON array, as stored. With `--follow`: JSON Lines,
  one item per line, the existing ones first, then each new one as it arrives (after a pop
  and an add between two polls, the newest items as they are then).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..info import SessionInfo
from ..store import SessionStore
from .context import CommandError, Context
from .render import (
    conversation_lines,
    format_metadata,
    relative_time,
    session_rows,
    utc_minutes,
)

__all__ = [
    "all_sessions",
    "fetch_conversation",
    "fetch_sessions",
    "header_lines",
    "run_list",
    "run_show",
    "session_json",
]

#: Sessions asked for per `list_sessions` call.
PAGE_SIZE = 100
#: `show --follow` polls this often while the session changes, backing off to `FOLLOW_SLOWEST`.
FOLLOW_FASTEST = 0.25
FOLLOW_SLOWEST = 2.0


async def fetch_sessions(
    store: SessionStore,
    *,
    limit: int,
    metadata: Mapping[str, str] | None = None,
    cursor: str | None = None,
) -> tuple[list[SessionInfo], str | None]:
    """Up to `limit` sessions after `cursor`, newest first, and the cursor of the rest."""
    sessions: list[SessionInfo] = []
    while len(sessions) < limit:
        page = await store.list_sessions(
            limit=min(limit - len(sessions), PAGE_SIZE), cursor=cursor, metadata=metadata
        )
        sessions.extend(page.sessions)
        cursor = page.next_cursor
        if cursor is None:
            break
    return sessions, cursor


async def all_sessions(
    store: SessionStore,
    *,
    metadata: Mapping[str, str] | None = None,
    page_size: int = 1000,
    ctx: Context | None = None,
) -> list[SessionInfo]:
    """Every live session, most recently updated first (each page counts as progress)."""
    sessions: list[SessionInfo] = []
    cursor: str | None = None
    while True:
        page = await store.list_sessions(limit=page_size, cursor=cursor, metadata=metadata)
        sessions.extend(page.sessions)
        if ctx is not None:
            ctx.progress()
        cursor = page.next_cursor
        if cursor is None:
            return sessions


async def fetch_conversation(
    store: SessionStore, session_id: str, *, last: int | None = None
) -> tuple[SessionInfo, list[Any]] | None:
    """The session's info and its items (the newest `last`, or all); None if it is absent."""
    info = await store.get_info(session_id)
    if info is None:
        return None
    return info, await _items(store, session_id, last)


async def _items(store: SessionStore, session_id: str, last: int | None) -> list[Any]:
    # An operator's look must not change the session: every item whatever window the store
    # applies by default, and no sliding expiry.
    session = store.session(
        session_id, max_turns=None, session_settings=None, refresh_ttl_on_read=False
    )
    return await session.get_items(last) if last is not None else await session.get_items()


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def session_json(info: SessionInfo) -> dict[str, Any]:
    return {
        "session_id": info.session_id,
        "item_count": info.item_count,
        "created_at": _iso(info.created_at),
        "updated_at": _iso(info.updated_at),
        "expires_at": _iso(info.expires_at),
        "metadata": dict(info.metadata),
    }


async def run_list(ctx: Context, args: argparse.Namespace) -> int:
    """Print a table (or a JSON object) of sessions, newest first."""
    ctx.require_directory()
    out = ctx.out
    metadata = dict(args.meta or []) or None
    if ctx.missing_database() is not None:
        sessions: list[SessionInfo] = []
        cursor: str | None = None
    elif args.all:
        sessions, cursor = await all_sessions(ctx.store, metadata=metadata, ctx=ctx), None
    else:
        sessions, cursor = await fetch_sessions(
            ctx.store, limit=args.limit, metadata=metadata, cursor=args.cursor
        )
    if ctx.json:
        out.json({"sessions": [session_json(info) for info in sessions], "next_cursor": cursor})
        return 0
    if not sessions:
        missing = ctx.missing_database()
        if missing is not None:
            out.line(f"No sessions: {missing} does not exist yet.")
        else:
            where = f" matching {format_metadata(metadata)}" if metadata else ""
            more = " after this cursor" if args.cursor else ""
            out.line(f"No sessions{where}{more} in {ctx.shown_url}.")
        return 0
    columns, rows = session_rows(sessions)
    out.table(columns, rows)
    if cursor is not None:
        words = ["list", "--limit", str(args.limit)]
        for key, value in (metadata or {}).items():
            words += ["--meta", f"{key}={value}"]
        out.line(
            out.style(
                f"{len(sessions)} shown; more match. Next page: "
                f"{ctx.command(*words, '--cursor', cursor)}  (or --all)",
                "dim",
            )
        )
    return 0


async def run_show(ctx: Context, args: argparse.Namespace) -> int:
    """Print one session's conversation (or its items as JSON); `--follow` keeps at it."""
    ctx.require_directory()
    out = ctx.out
    missing = ctx.missing_database()
    if missing is not None:
        raise CommandError(f"no session {args.session_id!r}: {missing} does not exist")
    found = await fetch_conversation(ctx.store, args.session_id, last=args.last)
    if found is None:
        raise CommandError(f"no session {args.session_id!r} in {ctx.shown_url}")
    info, items = found
    cut = not args.full
    if ctx.json and not args.follow:
        out.json(items)
        return 0
    if ctx.json:
        for item in items:
            out.line(json.dumps(item, ensure_ascii=False))
    else:
        out.lines(header_lines(info, ctx))
        out.line()
        if len(items) < info.item_count:
            out.line(out.style(f"(the last {len(items)} of {info.item_count} items)", "dim"))
            out.line()
        out.lines(conversation_lines(items, out, cut=cut))
    if args.follow:
        await follow(ctx, args.session_id, info, items[-1] if items else None, cut=cut)
    return 0


async def follow(
    ctx: Context, session_id: str, info: SessionInfo, newest: Any, *, cut: bool
) -> None:
    """Print items added after those of `info` (whose newest item is `newest`), as they
    arrive, until cancelled (Ctrl-C).

    Polls the session's info (one cheap read: no items) with a backoff while nothing
    changes. A change is a new item count or a new update time; then the items after the
    last one seen are read, with that one: if it is no longer what was shown (a pop and an
    add between two polls, a replaced history), that is said and the newest items are
    printed all the same. A history that shrank (popped, replaced, cleared) is said, not
    re-printed; a change of metadata alone prints nothing.
    """
    out = ctx.out
    if not ctx.json:
        out.line(out.style("(following: new items appear below; Ctrl-C stops)", "dim"))
    out.flush()
    delay = FOLLOW_FASTEST
    seen, updated = info.item_count, info.updated_at
    gone = False
    while True:
        await asyncio.sleep(delay)
        now = await ctx.store.get_info(session_id)
        ctx.progress()  # each answered poll: the time budget bounds one poll, not the watch
        delay = min(delay * 2, FOLLOW_SLOWEST)
        if now is None:
            if not gone and not ctx.json:
                out.line(out.style("(the session no longer exists)", "dim"))
                out.flush()
            gone, seen, newest = True, 0, None
            continue
        gone = False
        if now.item_count == seen and now.updated_at == updated:
            continue
        updated = now.updated_at
        if now.item_count < seen:
            if not ctx.json:
                out.line(out.style(f"({seen - now.item_count} item(s) removed)", "dim"))
            seen = now.item_count
            tail = await _items(ctx.store, session_id, 1) if seen else []
            newest = tail[-1] if tail else None
            out.flush()
            continue
        # The items after the last one seen, and that one (when there was one) to check that
        # the history still goes on from it.
        wanted = now.item_count - seen + (1 if seen else 0)
        tail = await _items(ctx.store, session_id, wanted) if wanted else []
        if not tail:
            continue
        if seen and tail[0] == newest:
            new = tail[1:]
        elif seen:
            new = tail  # what was shown last is gone: the newest items, as they are now
            if not ctx.json:
                out.line(out.style("(the items shown last were removed or replaced)", "dim"))
        else:
            new = tail
        seen, newest = now.item_count, tail[-1]
        if new:
            if ctx.json:
                for item in new:
                    out.line(json.dumps(item, ensure_ascii=False))
            else:
                if isinstance(new[0], dict) and new[0].get("role") == "user":
                    out.line()  # a new turn, set apart as in the conversation above
                out.lines(conversation_lines(new, out, cut=cut))
            delay = FOLLOW_FASTEST
        out.flush()


def header_lines(info: SessionInfo, ctx: Context) -> list[str]:
    """The lines above a shown conversation: id, size, times, metadata."""
    out = ctx.out
    noun = "item" if info.item_count == 1 else "items"
    expires = f"expires {relative_time(info.expires_at)}" if info.expires_at else "never expires"
    facts = [
        f"{info.item_count} {noun}",
        f"updated {relative_time(info.updated_at)}",
        f"created {utc_minutes(info.created_at)} UTC",
        expires,
    ]
    lines = [
        f"{out.style('Session', 'bold')} {out.style(info.session_id, 'bold', 'cyan')}",
        out.style(" · ".join(facts), "dim"),
    ]
    if info.metadata:
        lines.append(out.style(f"metadata: {format_metadata(info.metadata)}", "dim"))
    return lines
