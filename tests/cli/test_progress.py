"""Progress of a migration off a terminal: a plain line per tenth of the work."""

from __future__ import annotations

import io

from turnstore.cli.progress import PlainProgress, format_duration, open_progress


def test_plain_progress_prints_a_line_per_tenth_and_the_last_one() -> None:
    stream = io.StringIO()
    progress = PlainProgress(stream)
    progress.start(sessions=20, items=200)
    for _ in range(20):
        progress.advance(1, 10)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("  2/20 sessions, 20/200 items (")
    assert "items/s, ETA 0:00:" in lines[0]
    assert lines[-1].startswith("  20/20 sessions, 200/200 items (")
    assert lines[-1].endswith("items/s, done)")


def test_plain_progress_of_sessions_without_items_counts_sessions() -> None:
    stream = io.StringIO()
    progress = PlainProgress(stream)
    progress.start(sessions=2, items=0)
    progress.advance(1, 0)
    progress.advance(1, 0)
    assert (
        stream.getvalue().splitlines()[-1].startswith("  2/2 sessions, 0/0 items (0 items/s, done)")
    )


def test_plain_progress_of_a_job_that_counts_sessions_only_leaves_items_out() -> None:
    stream = io.StringIO()
    progress = PlainProgress(stream, items=False)
    progress.start(sessions=2, items=0)
    progress.advance(1, 0)
    progress.advance(1, 0)
    last = stream.getvalue().splitlines()[-1]
    assert last.startswith("  2/2 sessions (")
    assert last.endswith(" sessions/s, done)")
    assert "items" not in stream.getvalue()


def test_off_a_terminal_progress_is_plain() -> None:
    assert isinstance(open_progress(io.StringIO()), PlainProgress)


def test_durations_read_as_clock_times() -> None:
    assert format_duration(0.4) == "0:00:00"
    assert format_duration(62) == "0:01:02"
    assert format_duration(3723) == "1:02:03"
