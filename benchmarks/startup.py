"""Workload 8: how long the `turnstore` command takes as a whole process (SPEC section 4).

Each command runs as a new process, the installed console script as a user types it (or
`python -m turnstore` where there is none), against a SQLite file of 20 sessions, beside
the floor the target is measured against: `python -c "import redis.asyncio, sqlite3"`, the
imports any tool of this kind pays at the least. Variants run in interleaved rounds, the
order rotating every round, one run of each per round after an untimed warm-up round; a
ratio is the median of the per-round ratios. Target: `turnstore list` within 2x of the
floor.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import Report, log, paired_ratios
from turnstore import open_store

#: What every variant is compared with: `python -c "import redis.asyncio, sqlite3"`.
FLOOR = "floor"
#: Sessions in the file that `list` and `show` read.
SESSIONS = 20


def turnstore_command() -> list[str]:
    """The console script beside this interpreter, else `python -m turnstore`."""
    script = Path(sys.executable).with_name("turnstore")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "turnstore"]


async def _seed(url: str) -> None:
    async with open_store(url) as store:
        for n in range(SESSIONS):
            session = store.session(f"s{n}")
            await session.add_items(
                [
                    {"role": "user", "content": f"question {n}"},
                    {"role": "assistant", "content": f"answer {n}"},
                ]
            )


def variants(url: str) -> dict[str, list[str]]:
    cli = [*turnstore_command(), "--url", url]
    return {
        FLOOR: [sys.executable, "-c", "import redis.asyncio, sqlite3"],
        "turnstore list": [*cli, "list"],
        "turnstore show s1": [*cli, "show", "s1"],
        "turnstore --help": [*cli, "--help"],
        "turnstore --version": [*cli, "--version"],
    }


def _run_once(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr!r}")
    return elapsed


def bench_startup(rounds: int, report: Report) -> None:
    """Wall time of each command, `rounds` interleaved runs; rows in ms, the list target."""
    label = "8. start-up (whole process)"
    log(f"{label} ...")
    with tempfile.TemporaryDirectory(prefix="turnstore-startup-") as tmp:
        directory = Path(tmp)
        url = f"sqlite:///{directory / 'sessions.db'}"
        asyncio.run(_seed(url))
        commands = variants(url)
        names = list(commands)
        for name in names:  # warm-up: the page cache, .pyc files
            _run_once(commands[name], directory)
        times: dict[str, list[float]] = {name: [] for name in names}
        for r in range(rounds):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(_run_once(commands[name], directory))
    for name in names:
        report.add(label, name, [t * 1000 for t in times[name]], "ms")
    report.notes.append('workload 8\'s floor: python -c "import redis.asyncio, sqlite3"')
    for name in names[1:]:
        ratios = paired_ratios(times[name], times[FLOOR])
        if name == "turnstore list":
            report.target(f"{name} / the import floor", ratios, "<=", 2.0)
        else:
            median = sorted(ratios)[len(ratios) // 2]
            report.notes.append(f"{name}: {median:.2f}x the floor (median of per-round ratios)")
