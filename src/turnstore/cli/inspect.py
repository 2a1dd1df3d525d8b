"""`list` and `show`: read-only views of a store."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..info import SessionInfo
from ..store import SessionStore
from .context import CommandError, Context
from .render import conversation_lines, format_metadata, relative_time, session_rows, utc_minutes

__all__ = [
    "all_sessions",
    "fetch_conversation",
    "fetch_sessions",
    "run_list",
    "run_show",
    "session_json",
]

#: Sessions asked for per `list_sessions` call.
PAGE_SIZE = 100


async def fetch_sessions(
    store: SessionStore, *, limit: int, metadata: Mapping[str, str] | None = None
) -> tuple[list[SessionInfo], bool]:
    """Up to `limit` sessions, most recently updated first, and whether more exist."""
    sessions: list[SessionInfo] = []
    cursor: str | None = None
    while len(sessions) < limit:
        page = await store.list_sessions(
            limit=min(limit - len(sessions), PAGE_SIZE), cursor=cursor, metadata=metadata
        )
        sessions.extend(page.sessions)
        cursor = page.next_cursor
        if cursor is None:
            break
    return sessions, cursor is not None


async def all_sessions(store: SessionStore, *, page_size: int = 1000) -> list[SessionInfo]:
    """Every live session, most recently updated first."""
    sessions: list[SessionInfo] = []
    cursor: str | None = None
    while True:
        page = await store.list_sessions(limit=page_size, cursor=cursor)
        sessions.extend(page.sessions)
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
    # An operator's look must not change the session: show every item whatever window the
    # store applies by default, and do not slide its expiry.
    session = store.session(
        session_id, max_turns=None, session_settings=None, refresh_ttl_on_read=False
    )
    items = await session.get_items(last) if last is not None else await session.get_items()
    return info, items


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
    """Print a table (or JSON array) of sessions, newest first."""
    out = ctx.out
    missing = ctx.missing_database()
    if missing is not None:
        if args.json:
            out.json([])
        else:
            out.line(f"No sessions: {missing} does not exist yet.")
        return 0
    metadata = dict(args.meta or [])
    sessions, more = await fetch_sessions(ctx.store, limit=args.limit, metadata=metadata or None)
    if args.json:
        out.json([session_json(info) for info in sessions])
        return 0
    if not sessions:
        where = f" matching {format_metadata(metadata)}" if metadata else ""
        out.line(f"No sessions{where} in {ctx.shown_url}.")
        return 0
    columns, rows = session_rows(sessions)
    out.table(columns, rows)
    if more:
        out.line(
            out.style(
                f"{len(sessions)} shown; more sessions match (raise --limit to see them).", "dim"
            )
        )
    return 0


async def run_show(ctx: Context, args: argparse.Namespace) -> int:
    """Print one session's conversation (or its items as JSON)."""
    out = ctx.out
    missing = ctx.missing_database()
    if missing is not None:
        raise CommandError(f"no session {args.session_id!r}: {missing} does not exist")
    found = await fetch_conversation(ctx.store, args.session_id, last=args.last)
    if found is None:
        raise CommandError(f"no session {args.session_id!r} in {ctx.shown_url}")
    info, items = found
    if args.json:
        out.json(items)
        return 0
    out.lines(header_lines(info, ctx))
    out.line()
    if len(items) < info.item_count:
        out.line(out.style(f"(the last {len(items)} of {info.item_count} items)", "dim"))
        out.line()
    out.lines(conversation_lines(items, out))
    return 0


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
