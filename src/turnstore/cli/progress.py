"""Progress of a long copy: a live bar on a terminal, plain lines otherwise.

The bar is `rich`'s, imported lazily as in render.py; without `rich` (or off a terminal) the
same numbers are printed as a line now and then. Both show sessions and items done out of
the total, the rate in items per second and the time left; a job that counts sessions only
(`reindex`: `items=False`) shows sessions and sessions per second.
"""

from __future__ import annotations

import time
from typing import Any, Protocol, TextIO

__all__ = ["PlainProgress", "Progress", "RichProgress", "format_duration", "open_progress"]

#: A plain line at least every this many seconds...
PLAIN_INTERVAL_S = 5.0
#: ...and whenever another tenth of the work is done.
PLAIN_STEPS = 10


class Progress(Protocol):
    def start(self, sessions: int, items: int) -> None: ...

    def advance(self, sessions: int, items: int) -> None: ...

    def finish(self) -> None: ...


def format_duration(seconds: float) -> str:
    """`0:00:42`, `1:02:03`."""
    whole = max(0, round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class PlainProgress:
    """A line now and then: `12/40 sessions, 1,234/5,678 items (2,345 items/s, ETA 0:00:02)`."""

    def __init__(self, stream: TextIO, *, items: bool = True) -> None:
        self.stream = stream
        self.counts_items = items
        self.sessions = self.items = 0
        self.total_sessions = self.total_items = 0
        self.started = self.last_line = 0.0
        self.last_step = 0

    def start(self, sessions: int, items: int) -> None:
        self.total_sessions, self.total_items = sessions, items
        self.started = self.last_line = time.monotonic()

    def _fraction(self) -> float:
        if self.total_items:
            return self.items / self.total_items
        return self.sessions / self.total_sessions if self.total_sessions else 1.0

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        fraction = self._fraction()
        if fraction >= 1:
            eta = "done"
        elif fraction > 0:
            eta = f"ETA {format_duration(elapsed * (1 - fraction) / fraction)}"
        else:
            eta = "ETA -"
        done = f"  {self.sessions:,}/{self.total_sessions:,} sessions"
        if not self.counts_items:
            return f"{done} ({self.sessions / elapsed:,.0f} sessions/s, {eta})"
        return (
            f"{done}, {self.items:,}/{self.total_items:,} items "
            f"({self.items / elapsed:,.0f} items/s, {eta})"
        )

    def advance(self, sessions: int, items: int) -> None:
        self.sessions += sessions
        self.items += items
        step = int(self._fraction() * PLAIN_STEPS)
        now = time.monotonic()
        if step > self.last_step or now - self.last_line >= PLAIN_INTERVAL_S:
            self.last_step, self.last_line = step, now
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def finish(self) -> None:
        pass


class RichProgress:
    """Two live bars (sessions, items) with counts, rate and time left."""

    def __init__(self, stream: TextIO, *, items: bool = True) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            ProgressColumn,
            Task,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bars
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task: Task) -> Text:
                speed = task.finished_speed or task.speed
                unit = task.fields.get("unit", "")
                return Text("" if speed is None else f"{speed:,.0f} {unit}/s", style="cyan")

        self._bars = Bars(
            TextColumn("{task.description:>8}"),
            BarColumn(),
            MofNCompleteColumn(),
            Rate(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=stream),
            redirect_stderr=True,  # problems reported meanwhile print above the bars
        )
        self.counts_items = items
        self._sessions: Any = None
        self._items: Any = None

    def start(self, sessions: int, items: int) -> None:
        self._sessions = self._bars.add_task("sessions", total=sessions, unit="sessions")
        if self.counts_items:
            self._items = self._bars.add_task("items", total=items, unit="items")
        self._bars.start()

    def advance(self, sessions: int, items: int) -> None:
        self._bars.advance(self._sessions, sessions)
        if self._items is not None:
            self._bars.advance(self._items, items)

    def finish(self) -> None:
        self._bars.stop()


def open_progress(stream: TextIO, *, items: bool = True) -> Progress:
    """The bar when `stream` is a terminal and `rich` is installed, plain lines otherwise;
    `items=False` for a job that counts sessions only."""
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        try:
            return RichProgress(stream, items=items)
        except ImportError:
            pass
    return PlainProgress(stream, items=items)
