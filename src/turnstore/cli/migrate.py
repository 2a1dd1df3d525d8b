"""`migrate`: copy every session of a source (any layout) into a store, verified, resumable.

Each session is read whole, written whole through `import_sessions` (one atomic replace per
session, or nothing when the destination already holds the same content), then read back and
compared: item count and content digest. Sessions go in batches (see batches.py), each step
of a batch one request to its store, a few batches at a time. An interruption (Ctrl-C) lets
the batches already started finish, so every session counted as done was copied and
verified; a rerun skips what was copied and finishes the rest; nothing is ever copied twice
or left half copied.

`--dry-run` reads every session and compares it with the destination as a copy would
(`import_sessions(..., dry_run=True)`: the same validation and content digests), counting
what would be created, replaced or left alone, and writes nothing (not even a new SQLite
file: an empty store stands in for it).

The readers of the source layouts are in `turnstore.migration`. `--json` prints one object
at the end: `{"sessions", "items", "created", "replaced", "unchanged", "expired", "gone",
"verified", "corrupt", "not_carried", "failed", "mismatched", "dry_run"}` (a dry run counts
what it would do: `created`, `replaced`, `unchanged` and `expired`; `verified` stays 0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import ConfigurationError, InvalidItemError
from ..migration import PlannedSession, SourceLayout, open_source
from ..records import ImportResult, SessionRecord, export_sessions, import_sessions
from ..store import SessionStore, open_store
from ..urls import mask_url
from .batches import in_batches, run_batches
from .context import (
    CommandError,
    Context,
    UsageError,
    read_only_options,
    sqlite_file,
    store_time_budget,
)
from .failures import Scrubber, describe, is_operational
from .progress import open_progress

__all__ = ["MigrationTally", "run_migrate"]

T = TypeVar("T")

#: Testing hook: stop as if interrupted once this many sessions are done.
STOP_AFTER_ENV = "_TURNSTORE_MIGRATE_STOP_AFTER"
#: Characters of a content digest shown in a mismatch report.
DIGEST_CHARS = 12


@dataclass
class MigrationTally:
    outcomes: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("created", "replaced", "unchanged", "expired"), 0)
    )
    done: int = 0
    items: int = 0
    verified: int = 0
    gone: int = 0
    corrupt: int = 0
    not_carried: int = 0
    failed: int = 0
    mismatched: int = 0

    @property
    def problems(self) -> int:
        return self.corrupt + self.not_carried + self.failed + self.mismatched

    def as_json(self, *, dry_run: bool, sessions: int, items: int) -> dict[str, Any]:
        return {
            "sessions": sessions,
            "items": items,
            **self.outcomes,
            "gone": self.gone,
            "verified": self.verified,
            "corrupt": self.corrupt,
            "not_carried": self.not_carried,
            "failed": self.failed,
            "mismatched": self.mismatched,
            "dry_run": dry_run,
        }


class Migration:
    def __init__(
        self, source: SourceLayout, destination: SessionStore, dst_url: str, scrub: Scrubber
    ) -> None:
        self.source = source
        self.destination = destination
        self.dst_url = dst_url
        self.dst_shown = mask_url(dst_url)
        self.scrub = scrub
        self.tally = MigrationTally()
        self.dry_run = False
        #: True when a dry run found no destination file (it is not created).
        self.destination_empty = False
        #: The calls waiting for a store: when each started, and on which side.
        self._waiting: dict[object, tuple[float, str]] = {}
        self._last_side = "source"

    def waiting_on(self) -> str:
        """The side (and its URL) of the call that has waited longest, for a time-out
        message; the side last asked when no call is waiting."""
        side = min(self._waiting.values())[1] if self._waiting else self._last_side
        shown = self.source.shown_url if side == "source" else self.dst_shown
        return f"{side}: {shown}"

    def warn(self, text: str) -> None:
        sys.stdout.flush()  # keep the order of both streams when they go to one place
        sys.stderr.write(self.scrub(f"turnstore: {text}") + "\n")
        sys.stderr.flush()

    async def _guard(self, side: str, work: Awaitable[T]) -> T:
        """Run `work`; a failure of the store becomes one message naming the side and URL."""
        call = object()
        self._waiting[call] = (time.monotonic(), side)
        self._last_side = side
        try:
            return await work
        except ConfigurationError:
            raise
        except Exception as exc:
            if not is_operational(exc):
                raise
            url = self.source.url if side == "source" else self.dst_url
            raise CommandError(f"{side}: {describe(exc, url)}") from None
        finally:
            del self._waiting[call]

    async def plan(self) -> list[PlannedSession]:
        planned = await self._guard("source", self.source.plan())
        # The destination must work before anything is copied (a real query: its error says
        # why). After the source: a missing source must not leave a new, empty SQLite file,
        # nor may a dry run. Whether the file exists is one stat of its path before anything
        # opens it, asked synchronously as `Context.missing_database` does: the database's
        # own I/O is the store's, on its worker thread.
        dst_file = sqlite_file(self.destination)
        if dst_file is None or dst_file.exists() or not self.dry_run:
            await self._guard("destination", self.destination.count_sessions())
        else:
            self.destination_empty = True  # a dry run into a file not created yet
        # Least recently updated first: the copies' update times come out in nearly the same
        # order (they are the times of the copies, whose milliseconds may tie).
        planned.sort(key=lambda p: (p.updated, p.session_id))
        return planned

    async def read(self, batch: Sequence[PlannedSession]) -> list[SessionRecord]:
        """The batch's sessions as read from the source; what cannot be carried is said."""
        tally = self.tally
        found = await self._guard("source", self.source.read_many(batch))
        records: list[SessionRecord] = []
        for source_session in found:
            if source_session is None:
                tally.gone += 1  # deleted or expired since the plan was made
                continue
            record = source_session.record
            for what in source_session.not_carried:
                self.warn(
                    f"session {record.session_id!r}: not carried: {what}; it stays in the source"
                )
            tally.not_carried += len(source_session.not_carried)
            for bad in record.corrupt:
                self.warn(
                    f"session {bad.session_id!r}: source item at position {bad.position} cannot "
                    f"be decoded ({bad.reason}); not copied, it stays in the source"
                )
            tally.corrupt += len(record.corrupt)
            records.append(record)
        return records

    def count(
        self, records: Sequence[SessionRecord], results: Sequence[ImportResult]
    ) -> list[SessionRecord]:
        """Count what the import did (or would do) with each record; the records written."""
        tally = self.tally
        written: list[SessionRecord] = []
        for record, result in zip(records, results, strict=True):
            if isinstance(result, (InvalidItemError, ConfigurationError)):
                self.warn(f"session {record.session_id!r}: not copied: {result}")
                tally.failed += 1
                continue
            tally.outcomes[result] += 1
            tally.items += len(record.items)
            if result == "unchanged" and not self.dry_run:
                tally.verified += 1  # just compared with the source
            elif result in ("created", "replaced"):
                written.append(record)
        return written

    async def copy(self, batch: Sequence[PlannedSession]) -> None:
        """Copy a batch of sessions: read together, written together, read back together."""
        records = await self.read(batch)
        results = await self._guard("destination", import_sessions(self.destination, records))
        written = self.count(records, results)
        if written:
            copies = await self._guard(
                "destination",
                export_sessions(self.destination, [record.session_id for record in written]),
            )
            for record, copy in zip(written, copies, strict=True):
                self.verify(record, copy)

    async def preview(self, batch: Sequence[PlannedSession]) -> None:
        """What `copy` would do with a batch: the same reads, validation and comparison
        with the destination (the digests a real copy compares), and no write."""
        records = await self.read(batch)
        if self.destination_empty:
            from ..memory import MemoryStore

            # An empty store stands in for a destination file that does not exist yet.
            async with MemoryStore() as empty:
                results = await import_sessions(empty, records, dry_run=True)
        else:
            results = await self._guard(
                "destination", import_sessions(self.destination, records, dry_run=True)
            )
        self.count(records, results)

    def verify(self, record: SessionRecord, copy: SessionRecord | None) -> None:
        """Compare a copy, as read back from the destination, with its source record."""
        expected = record.digest()
        found = copy.digest() if copy is not None else "-"
        count = len(copy.items) if copy is not None else 0
        if (
            copy is not None
            and not copy.corrupt
            and count == len(record.items)
            and (found == expected)
        ):
            self.tally.verified += 1
            return
        self.tally.mismatched += 1
        self.warn(
            f"session {record.session_id!r}: verification failed: the source has "
            f"{len(record.items)} items (digest {expected[:DIGEST_CHARS]}), the destination "
            f"{count} (digest {found[:DIGEST_CHARS]})"
        )


class StopRequest:
    """Ctrl-C during a migration: finish the batches being copied, then stop.

    The loop checks `requested` before it starts a batch, so a stop never depends on a task
    cancellation reaching it through the Redis client (redis-py can lose one that lands
    mid-command). A second Ctrl-C stops at once, the default way.
    """

    def __init__(self) -> None:
        self.requested = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def _on_sigint(self) -> None:
        self.requested = True
        self.uninstall()  # the next Ctrl-C interrupts at once

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, self._on_sigint)
        except (NotImplementedError, RuntimeError, ValueError):
            return  # no signal handlers here (Windows, not the main thread)
        self._loop = loop

    def uninstall(self) -> None:
        if self._loop is not None:
            self._loop.remove_signal_handler(signal.SIGINT)
            self._loop = None


def _stop_after() -> int | None:
    text = os.environ.get(STOP_AFTER_ENV)
    return int(text) if text else None


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


async def run_migrate(ctx: Context, args: argparse.Namespace) -> int:
    """Copy every session of SRC_URL (in `--from-layout`) into the store at DST_URL."""
    if ctx.url_given:
        raise UsageError("migrate takes its stores as SRC_URL and DST_URL; --url does not apply")
    out = ctx.out
    scrub = Scrubber(args.src_url, args.dst_url)
    # Both stores get the time budget: each call to either waits at most --timeout.
    source = open_source(
        args.from_layout, args.src_url, **store_time_budget(args.src_url, ctx.timeout)
    )
    try:
        options = store_time_budget(args.dst_url, ctx.timeout)
        if args.dry_run:  # nothing is written, not even a new SQLite file
            options.update(read_only_options(args.dst_url))
        destination = open_store(args.dst_url, **options)
    except BaseException:
        await source.close()
        raise
    migration = Migration(source, destination, args.dst_url, scrub)
    migration.dry_run = args.dry_run
    ctx.waiting_on = migration.waiting_on
    tally = migration.tally
    try:
        verb = "Would migrate" if args.dry_run else "Migrating"
        if not ctx.json:
            out.line(
                scrub(f"{verb} {source.shown_url} (layout: {source.name}) to {migration.dst_shown}")
            )
        planned = await migration.plan()
        ctx.progress()
        total_items = sum(p.item_count for p in planned)
        if not planned:
            if ctx.json:
                out.json(tally.as_json(dry_run=args.dry_run, sessions=0, items=0))
            else:
                out.line("Nothing to copy: the source holds no sessions.")
            return 0
        if not ctx.json:
            out.line(f"Found {_plural(len(planned), 'session')}, {_plural(total_items, 'item')}.")
        out.flush()
        started = time.monotonic()
        stop_after = None if args.dry_run else _stop_after()
        progress = open_progress(sys.stderr if ctx.json else sys.stdout)
        progress.start(len(planned), total_items)
        stop = StopRequest()
        stop.install()
        # A dry run reads and compares every session as a copy would, and writes nothing.
        work = migration.preview if args.dry_run else migration.copy
        # The testing hook stops as an interruption would, once that many sessions are done.
        todo = planned if stop_after is None else planned[:stop_after]
        try:
            runs = run_batches(in_batches(todo), work, stop=lambda: stop.requested)
            async with aclosing(runs):
                async for batch, _ in runs:
                    ctx.progress()  # --timeout bounds one batch's copy, not the migration
                    tally.done += len(batch)
                    progress.advance(len(batch), sum(p.item_count for p in batch))
            if tally.done < len(planned):
                raise KeyboardInterrupt
        except (KeyboardInterrupt, asyncio.CancelledError):
            stop.uninstall()
            progress.finish()
            if args.dry_run:
                migration.warn(
                    f"interrupted after {tally.done:,} of {_plural(len(planned), 'session')} "
                    "(dry run: nothing was written)"
                )
            else:
                migration.warn(
                    f"interrupted after {tally.done:,} of {_plural(len(planned), 'session')}; "
                    "run the same command again to resume (what was copied is not copied again)"
                )
            raise
        stop.uninstall()
        progress.finish()
        elapsed = time.monotonic() - started
        if ctx.json:
            out.json(tally.as_json(dry_run=args.dry_run, sessions=tally.done, items=tally.items))
            return 1 if tally.problems else 0
        created, replaced = tally.outcomes["created"], tally.outcomes["replaced"]
        if args.dry_run:
            out.line(
                f"Would copy {created + replaced:,} of {_plural(tally.done, 'session')}: "
                f"{created:,} to create, {replaced:,} to replace, "
                f"{tally.outcomes['unchanged']:,} already there ({_plural(tally.items, 'item')} "
                "read); nothing was written (dry run)."
            )
        else:
            outcomes = ", ".join(
                f"{count:,} {word}"
                for word, count in (
                    ("created", created),
                    ("replaced", replaced),
                    ("already there", tally.outcomes["unchanged"]),
                )
            )
            out.line(
                f"Copied {_plural(tally.done, 'session')} ({_plural(tally.items, 'item')}) "
                f"in {elapsed:.1f} s: {outcomes}; {tally.verified:,} verified."
            )
        notes = []
        if tally.outcomes["expired"]:
            skipped = "would be skipped" if args.dry_run else "skipped"
            notes.append(f"{tally.outcomes['expired']:,} {skipped} (expired)")
        if tally.gone:
            notes.append(f"{tally.gone:,} gone from the source meanwhile")
        if notes:
            out.line("Also: " + ", ".join(notes) + ".")
        if tally.problems:
            problems = [
                text
                for count, text in (
                    (tally.corrupt, _plural(tally.corrupt, "corrupt source item")),
                    (tally.not_carried, _plural(tally.not_carried, "part") + " not carried"),
                    (tally.failed, _plural(tally.failed, "session") + " not copied"),
                    (
                        tally.mismatched,
                        _plural(tally.mismatched, "session") + " failing verification",
                    ),
                )
                if count
            ]
            out.line(f"Problems: {', '.join(problems)} (see the messages above).")
            return 1
        return 0
    finally:
        await source.close()
        await destination.close()
