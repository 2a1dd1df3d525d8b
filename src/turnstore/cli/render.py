"""Turning data into text: tables, readable conversations, relative times, colours.

Nothing here does I/O on a store. Colours are ANSI escapes written only when `Output.color`
is true (stdout is a TTY and `NO_COLOR` is unset). Tables use `rich` when it can be imported,
else a plain aligned-column layout; `rich` is imported here, lazily, and nowhere else.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal, TextIO

from ..info import SessionInfo

__all__ = [
    "Column",
    "Output",
    "conversation_lines",
    "cut_text",
    "format_arguments",
    "relative_time",
    "session_rows",
    "utc_minutes",
    "wants_color",
]

_ANSI = {
    "bold": "1",
    "dim": "2",
    "italic": "3",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
}

#: Width of the speaker column of a conversation ("tool result" is the longest label).
LABEL_WIDTH = 11
#: Longest preview of an item this renderer does not know, in characters.
PREVIEW_CHARS = 160
#: Longest text `show` prints of a tool's output, and of any other entry, unless `--full`.
CUT_TOOL_CHARS = 500
CUT_TEXT_CHARS = 2000
#: Most lines `show` prints of one tool output unless `--full`.
CUT_TOOL_LINES = 12


def wants_color(stream: TextIO) -> bool:
    """Colours only on a terminal, and never when `NO_COLOR` is set."""
    if "NO_COLOR" in os.environ:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@dataclass(frozen=True)
class Column:
    header: str
    justify: Literal["left", "right"] = "left"
    style: str | None = None


class Output:
    """Where a command writes: a text stream, with or without colours."""

    def __init__(self, stream: TextIO | None = None, *, color: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.color = wants_color(self.stream) if color is None else color
        # Wrapping helps a person at a terminal; piped output keeps one line per paragraph
        # so that it stays easy to grep.
        self.wrap_width: int | None = (
            min(shutil.get_terminal_size().columns, 120) if self.color else None
        )

    def style(self, text: str, *styles: str) -> str:
        if not self.color or not styles or not text:
            return text
        codes = ";".join(_ANSI[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def line(self, text: str = "") -> None:
        self.stream.write(text + "\n")

    def lines(self, texts: Iterable[str]) -> None:
        for text in texts:
            self.line(text)

    def flush(self) -> None:
        self.stream.flush()

    def json(self, value: Any) -> None:
        self.line(json.dumps(value, indent=2, ensure_ascii=False))

    def table(self, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
        """Rows under a header, aligned; `rich` draws it when it is installed."""
        try:
            self._rich_table(columns, rows)
        except ImportError:
            self.lines(plain_table(columns, rows, self))

    def _rich_table(self, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
        from rich import box
        from rich.console import Console
        from rich.table import Table

        buffer = io.StringIO()
        console = Console(
            file=buffer,
            force_terminal=self.color,
            no_color=not self.color,
            highlight=False,
            # Piped output is not cut to 80 columns: the table takes the width it needs.
            width=shutil.get_terminal_size().columns if self.color else 10_000,
            soft_wrap=False,
        )
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
        for column in columns:
            table.add_column(column.header, justify=column.justify, style=column.style)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        # rich pads every cell to its column's width; trailing blanks only get in the way.
        self.lines(text.rstrip() for text in buffer.getvalue().splitlines())


def plain_table(columns: Sequence[Column], rows: Sequence[Sequence[str]], out: Output) -> list[str]:
    """The table as aligned columns separated by two spaces (the fallback without `rich`)."""
    widths = [len(c.header) for c in columns]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def cells(values: Sequence[str], header: bool) -> str:
        parts = []
        for column, width, value in zip(columns, widths, values, strict=True):
            padded = value.rjust(width) if column.justify == "right" else value.ljust(width)
            styles = ("bold",) if header else ((column.style,) if column.style else ())
            parts.append(out.style(padded, *styles))
        return "  ".join(parts).rstrip()

    lines = [cells([c.header for c in columns], header=True)]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(cells(row, header=False) for row in rows)
    return lines


# -- times -----------------------------------------------------------------------------------


def relative_time(when: datetime, now: datetime | None = None) -> str:
    """`when` as people say it: "just now", "3 min ago", "in 2 h", "5 days ago".

    Each unit is rounded to the nearest, so a TTL of an hour reads "in 1 h" both a moment
    before and a moment after the clocks of two machines agree.
    """
    now = now or datetime.now(timezone.utc)
    seconds = (now - when).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 5:
        return "just now"
    if seconds >= 60 * 86400:
        return utc_minutes(when)[:10]
    text = ""
    for size, unit, limit in ((1, "s", 60), (60, "min", 60), (3600, "h", 24), (86400, "day", 0)):
        count = round(seconds / size)
        if count < limit or not limit:
            text = f"{count} {unit}" + ("s" if unit == "day" and count != 1 else "")
            break
    return f"in {text}" if future else f"{text} ago"


def utc_minutes(when: datetime) -> str:
    """`2026-11-25 17:41` in UTC."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")


def session_rows(
    sessions: Sequence[SessionInfo], now: datetime | None = None
) -> tuple[list[Column], list[list[str]]]:
    """The `list` table: columns and one row per session."""
    columns = [
        Column("SESSION", style="bold"),
        Column("ITEMS", justify="right"),
        Column("UPDATED"),
        Column("CREATED (UTC)"),
        Column("EXPIRES"),
        Column("METADATA", style="dim"),
    ]
    rows = [
        [
            info.session_id,
            str(info.item_count),
            relative_time(info.updated_at, now),
            utc_minutes(info.created_at),
            relative_time(info.expires_at, now) if info.expires_at else "never",
            format_metadata(info.metadata),
        ]
        for info in sessions
    ]
    return columns, rows


def format_metadata(metadata: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(metadata.items()))


# -- conversations ---------------------------------------------------------------------------

_LABEL_STYLES: dict[str, tuple[str, ...]] = {
    "user": ("bold", "cyan"),
    "assistant": ("bold", "green"),
    "system": ("bold", "magenta"),
    "developer": ("bold", "magenta"),
    "tool call": ("yellow",),
    "tool result": ("blue",),
    "reasoning": ("dim",),
}


def format_arguments(arguments: Any) -> str:
    """Tool-call arguments as `city="Paris", days=3` (raw text when not a JSON object)."""
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except ValueError:
            return arguments
    else:
        parsed = arguments
    if not isinstance(parsed, dict):
        return arguments if isinstance(arguments, str) else _compact(arguments)
    return ", ".join(f"{key}={_compact(value)}" for key, value in parsed.items())


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _preview(value: Any) -> str:
    text = value if isinstance(value, str) else _compact(value)
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _content_text(content: Any) -> str:
    """The readable text of a message's content: a string or a list of content parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return _preview(content)
    parts: list[str] = []
    for part in content:
        if not isinstance(part, dict):
            parts.append(_preview(part))
            continue
        kind = part.get("type")
        if isinstance(part.get("text"), str):
            parts.append(part["text"])
        elif kind == "refusal":
            parts.append(f"[refused] {part.get('refusal', '')}")
        elif kind == "input_image":
            parts.append("[image]")
        elif kind == "input_file":
            parts.append(f"[file {part.get('filename') or part.get('file_id') or ''}]".strip())
        elif kind == "input_audio":
            parts.append("[audio]")
        else:
            parts.append(f"[{kind or 'part'}]")
    return "\n".join(parts)


@dataclass(frozen=True)
class _Entry:
    label: str
    text: str
    dim: bool = False


def _entry(item: Any, call_names: Mapping[str, str], previous_call: str | None) -> _Entry:
    if not isinstance(item, dict):
        return _Entry("item", _preview(item), dim=True)
    kind = item.get("type")
    role = item.get("role")
    if role is not None and kind in (None, "message"):
        return _Entry(str(role), _content_text(item.get("content", "")))
    if kind == "function_call":
        name = item.get("name", "?")
        return _Entry("tool call", f"{name}({format_arguments(item.get('arguments', ''))})")
    if kind == "custom_tool_call":
        return _Entry("tool call", f"{item.get('name', '?')}: {_preview(item.get('input', ''))}")
    if kind in ("function_call_output", "custom_tool_call_output"):
        output = item.get("output", "")
        text = output if isinstance(output, str) else _content_text(output)
        call_id = item.get("call_id")
        # Name the tool only when its call is not the line just above.
        name = call_names.get(call_id) if isinstance(call_id, str) else None
        if name and call_id != previous_call:
            text = f"{name} → {text}"
        return _Entry("tool result", text)
    if kind == "reasoning":
        summary = [p.get("text", "") for p in item.get("summary") or [] if isinstance(p, dict)]
        return _Entry("reasoning", "\n".join(summary) or "(no summary)", dim=True)
    if isinstance(kind, str):
        # Hosted tools, MCP, shell, computer use, compaction...: name them and show the rest.
        rest = {k: v for k, v in item.items() if k not in ("type", "id", "status")}
        label = "tool result" if kind.endswith("_output") else "tool call"
        if not kind.endswith(("_call", "_output")):
            label = "item"
        return _Entry(label, f"{kind} {_preview(rest)}".rstrip(), dim=label == "item")
    return _Entry("item", _preview(item), dim=True)


def cut_text(text: str, *, chars: int, lines: int | None = None) -> str:
    """`text`, or its start and a note of how much was cut (`show` without `--full`)."""
    kept = text[:chars]
    if lines is not None:
        kept = "\n".join(kept.split("\n")[:lines])
    if len(kept) >= len(text):
        return text
    left = len(text) - len(kept)
    return f"{kept.rstrip()}… [{left:,} of {len(text):,} characters cut; --full shows all]"


def conversation_lines(items: Sequence[Any], out: Output, *, cut: bool = False) -> list[str]:
    """Items as a readable conversation: one speaker column, a blank line between turns.

    `cut=True` shortens long texts, tool outputs most, saying how much was left out.
    """
    call_names: dict[str, str] = {}
    for item in items:
        if isinstance(item, dict) and item.get("type") in ("function_call", "custom_tool_call"):
            call_id = item.get("call_id")
            if isinstance(call_id, str):
                call_names[call_id] = str(item.get("name", "?"))
    indent = " " * (LABEL_WIDTH + 2)
    lines: list[str] = []
    previous_call: str | None = None
    for position, item in enumerate(items):
        entry = _entry(item, call_names, previous_call)
        if cut:
            tool = entry.label == "tool result"
            entry = _Entry(
                entry.label,
                cut_text(
                    entry.text,
                    chars=CUT_TOOL_CHARS if tool else CUT_TEXT_CHARS,
                    lines=CUT_TOOL_LINES if tool else None,
                ),
                entry.dim,
            )
        previous_call = item.get("call_id") if isinstance(item, dict) else None
        if position and entry.label == "user":
            lines.append("")
        label = out.style(entry.label.ljust(LABEL_WIDTH), *_LABEL_STYLES.get(entry.label, ()))
        body = _wrap(entry.text, out.wrap_width, len(indent))
        if entry.dim:
            body = [out.style(text, "dim") for text in body]
        lines.append(f"{label}  {body[0]}".rstrip())
        lines.extend(f"{indent}{text}".rstrip() for text in body[1:])
    return lines


def _wrap(text: str, width: int | None, indent: int) -> list[str]:
    paragraphs = text.splitlines() or [""]
    if width is None or width - indent < 20:
        return paragraphs
    wrapped: list[str] = []
    for paragraph in paragraphs:
        wrapped.extend(textwrap.wrap(paragraph, width - indent) or [""])
    return wrapped
