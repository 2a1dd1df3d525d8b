"""`export` and `import`: sessions as JSON Lines, one whole session per line.

A line is `{"session_id", "created_at", "updated_at", "expires_at", "metadata", "items"}`,
times in ISO 8601 (UTC) or null. Import validates a whole line before it writes anything of
it, and writes through `import_sessions`: equal content is left alone, so a second import
of the same file changes nothing. Sessions go in batches (see batches.py), a batch a request
to the store, a few batches at a time; every session is still written in one atomic step.

JSON shapes (`--json`): `export -o FILE --json` prints `{"exported", "items", "file",
"missing", "corrupt"}` (without `-o` the JSON Lines themselves are the output);
`import --json` prints `{"imported", "created", "replaced", "unchanged", "expired",
"refused"}`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from ..errors import ConfigurationError, InvalidItemError
from ..records import ImportResult, SessionRecord, export_sessions, import_sessions
from .batches import BATCH, in_batches, run_batches
from .context import CommandError, Context
from .inspect import all_sessions

__all__ = [
    "BadLine",
    "parse_line",
    "record_line",
    "report_corrupt",
    "run_export",
    "run_import",
]

#: Sessions per listing page while export finds every session (a page costs a round trip
#: per bucket step on Redis whatever its size, so fewer, larger pages are quicker).
PLAN_PAGE = 10_000
#: Fields of a line; `items` is the only one that must be present besides `session_id`.
FIELDS = ("session_id", "created_at", "updated_at", "expires_at", "metadata", "items")


#: How the summaries name what `import_session` did.
OUTCOME_WORDS = {
    "created": "created",
    "replaced": "replaced",
    "unchanged": "unchanged",
    "expired": "skipped (expired)",
}


class BadLine(ValueError):
    """A line of an import file that cannot be imported; nothing of it is written."""


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def record_line(record: SessionRecord) -> str:
    """The record as one line of JSON (no newline)."""
    line = {
        "session_id": record.session_id,
        "created_at": _iso(record.created_at),
        "updated_at": _iso(record.updated_at),
        "expires_at": _iso(record.expires_at),
        "metadata": record.metadata,
        "items": record.items,
    }
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _time(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadLine(f"{name} must be an ISO 8601 time or null, not {json.dumps(value)}")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadLine(f"{name} is not an ISO 8601 time: {value!r}") from None
    if when.tzinfo is None:  # a time without an offset is read as UTC
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def parse_line(text: str) -> SessionRecord:
    """A record from one line; `BadLine` saying what is wrong (items are checked on import)."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise BadLine(f"not JSON: {exc.msg} at column {exc.colno}") from None
    except ValueError as exc:  # NaN, Infinity
        raise BadLine(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadLine(f"expected a JSON object, not a JSON {type(value).__name__}")
    session_id = value.get("session_id")
    if not isinstance(session_id, str) or not session_id:
        raise BadLine("session_id must be a non-empty string")
    if "items" not in value:
        raise BadLine("no items")
    items = value["items"]
    if not isinstance(items, list):
        raise BadLine(f"items must be a JSON array, not {type(items).__name__}")
    metadata = value.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(v, str) and k for k, v in metadata.items()
    ):
        raise BadLine("metadata must be an object of non-empty keys and string values")
    return SessionRecord(
        session_id=session_id,
        items=items,
        metadata=metadata,
        created_at=_time(value.get("created_at"), "created_at"),
        updated_at=_time(value.get("updated_at"), "updated_at"),
        expires_at=_time(value.get("expires_at"), "expires_at"),
    )


def report_corrupt(record: SessionRecord) -> list[str]:
    """One line per undecodable stored item of `record`."""
    return [
        f"session {bad.session_id!r}: stored item at position {bad.position} cannot be decoded "
        f"({bad.reason}); it was left out and stays in the store"
        for bad in record.corrupt
    ]


def _warn(text: str) -> None:
    sys.stderr.write(f"turnstore: {text}\n")
    sys.stderr.flush()


# -- export ----------------------------------------------------------------------------------


@contextmanager
def _destination(path: str | None) -> Iterator[IO[bytes]]:
    """Standard output, or a temporary file renamed over `path` once everything is written."""
    if path is None or path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
        os.replace(temp, target)
    except BaseException:
        os.unlink(temp)
        raise


async def run_export(ctx: Context, args: argparse.Namespace) -> int:
    """Write the named sessions (or every session) as JSON Lines."""
    ctx.require_directory()
    wanted: list[str] = list(dict.fromkeys(args.session_ids))  # in order, once each
    missing: list[str] = []
    if ctx.missing_database() is not None:
        missing, ids = wanted, []  # nothing to read, and the file must not be created
    elif wanted:
        ids = wanted
    else:
        # Least recently updated first, as the sessions happened.
        ids = [
            info.session_id
            for info in reversed(await all_sessions(ctx.store, page_size=PLAN_PAGE, ctx=ctx))
        ]
    exported = items = corrupt = 0
    try:
        with _destination(args.output) as stream:
            runs = run_batches(in_batches(ids), lambda batch: export_sessions(ctx.store, batch))
            async with aclosing(runs):
                async for chunk, records in runs:
                    ctx.progress()
                    lines: list[bytes] = []
                    for session_id, record in zip(chunk, records, strict=True):
                        if record is None:
                            if wanted:
                                missing.append(session_id)
                            continue  # listed, then deleted or expired before it was read
                        for problem in report_corrupt(record):
                            _warn(problem)
                        corrupt += len(record.corrupt)
                        lines.append(record_line(record).encode("utf-8") + b"\n")
                        exported += 1
                        items += len(record.items)
                    stream.write(b"".join(lines))
    except FileNotFoundError as exc:
        raise CommandError(f"cannot write {args.output}: {exc.strerror}") from None
    for session_id in missing:
        _warn(f"no session {session_id!r} in {ctx.shown_url}")
    if args.output not in (None, "-"):
        if ctx.json:
            ctx.out.json(
                {
                    "exported": exported,
                    "items": items,
                    "file": args.output,
                    "missing": missing,
                    "corrupt": corrupt,
                }
            )
        else:
            noun = "session" if exported == 1 else "sessions"
            ctx.out.line(f"Exported {exported} {noun} ({items} items) to {args.output}.")
    if corrupt:
        _warn(f"{corrupt} stored item(s) could not be decoded and were left out (see above)")
    return 1 if missing or corrupt else 0


# -- import ----------------------------------------------------------------------------------


@dataclass
class ImportTally:
    outcomes: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("created", "replaced", "unchanged", "expired"), 0)
    )
    refused: int = 0

    @property
    def imported(self) -> int:
        return sum(self.outcomes.values())


def _lines(path: str) -> Iterator[tuple[int, bytes]]:
    if path == "-":
        yield from enumerate(sys.stdin.buffer, start=1)
        return
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed below, after the generator ends
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    with stream:
        yield from enumerate(stream, start=1)


@dataclass(frozen=True)
class _Line:
    """A line of the file: a record to import, or why the line is refused."""

    number: int
    record: SessionRecord | None = None
    refused: str | None = None
    session_id: str | None = None


def _refuse(tally: ImportTally, number: int, reason: str, session_id: str | None = None) -> None:
    where = f"line {number}" + (f" (session {session_id!r})" if session_id else "")
    _warn(f"{where}: {reason}; nothing of it was imported")
    tally.refused += 1


def _parsed_lines(path: str) -> Iterator[_Line]:
    seen: dict[str, int] = {}
    for number, raw in _lines(path):
        try:
            text = raw.rstrip(b"\r\n").decode("utf-8")
        except UnicodeDecodeError as exc:
            yield _Line(number, refused=f"not UTF-8 ({exc.reason} at byte {exc.start})")
            continue
        if not text.strip():
            continue  # blank lines separate nothing and hold nothing
        try:
            record = parse_line(text)
        except BadLine as exc:
            yield _Line(number, refused=str(exc))
            continue
        first = seen.get(record.session_id)
        if first is not None:
            yield _Line(
                number,
                refused=f"the session is already on line {first}",
                session_id=record.session_id,
            )
            continue
        seen[record.session_id] = number
        yield _Line(number, record=record)


def _line_batches(lines: Iterator[_Line]) -> Iterator[list[_Line]]:
    """Lines in batches of `BATCH` records (refused lines ride along, for their messages)."""
    batch: list[_Line] = []
    records = 0
    for line in lines:
        batch.append(line)
        records += line.record is not None
        if records == BATCH:
            yield batch
            batch, records = [], 0
    if batch:
        yield batch


async def run_import(ctx: Context, args: argparse.Namespace) -> int:
    """Import every good line of a JSON Lines file; exit 1 if any line was refused."""
    tally = ImportTally()
    if ctx.missing_directory() is not None:
        raise CommandError(
            f"cannot import into {ctx.database_file}: the directory {ctx.missing_directory()} "
            "does not exist"
        )

    async def import_batch(batch: list[_Line]) -> list[ImportResult]:
        return await import_sessions(ctx.store, [ln.record for ln in batch if ln.record])

    # Messages come in the order of the lines: each batch's, once it is done.
    runs = run_batches(_line_batches(_parsed_lines(args.file)), import_batch)
    async with aclosing(runs):
        async for batch, results in runs:
            ctx.progress()
            outcomes = iter(results)
            for line in batch:
                if line.record is None:
                    _refuse(tally, line.number, line.refused or "", line.session_id)
                    continue
                result = next(outcomes)
                if isinstance(result, (InvalidItemError, ConfigurationError)):
                    _refuse(tally, line.number, str(result), line.record.session_id)
                else:
                    tally.outcomes[result] += 1
    if ctx.json:
        ctx.out.json({"imported": tally.imported, **tally.outcomes, "refused": tally.refused})
        return 1 if tally.refused else 0
    source = "standard input" if args.file == "-" else args.file
    noun = "session" if tally.imported == 1 else "sessions"
    parts = [f"{count} {OUTCOME_WORDS[name]}" for name, count in tally.outcomes.items() if count]
    detail = f": {', '.join(parts)}" if parts else ""
    ctx.out.line(f"Imported {tally.imported} {noun} from {source} into {ctx.shown_url}{detail}.")
    if tally.refused:
        lines = "line was" if tally.refused == 1 else "lines were"
        ctx.out.line(f"{tally.refused} {lines} refused (see the messages above); fix and rerun.")
        return 1
    return 0
