"""Export, import and migrate rates (SPEC section 5, issue 13 item 6): sessions per second.

Usage (from the repository's root, as every benchmark module)::

    python -m benchmarks.transfer [--sessions N] [--rounds R] [--profile DIR]

Two `redis-server`s started here on free loopback ports (the test suite's starter) and
SQLite files in a temporary directory. N sessions (default 10,000) of one four-item turn
(~1 KB, with a `user_id` metadata pair) are written through the fastest public path
(`import_sessions`), then each command runs through the CLI's own entry point
(`turnstore.cli.app.main`, in this process, its output discarded) and is timed:

- `migrate` Redis to Redis (the second server), SQLite to Redis, Redis to SQLite;
- `export` of every session from Redis to a file, and `import` of that file into Redis.

Each destination is emptied before a round (FLUSHDB, a new file), so every round copies
every session; R rounds (default 3), the median and the range are printed. With
`--profile DIR`, one more round of each runs under pyinstrument (if installed) and its HTML
report is written to DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from tests.servers import RedisServer, start_redis

from turnstore import SessionRecord, import_sessions, open_store
from turnstore.cli.app import main as cli

#: Targets (sessions/s) of SPEC section 5.
TARGETS = {"migrate Redis -> Redis": 10_000.0, "migrate SQLite -> Redis": 5_000.0}


def make_turn(n: int) -> list[dict[str, Any]]:
    """One agent turn of ~1 KB: user message, tool call, tool output, assistant answer."""
    return [
        {"role": "user", "content": f"What is the weather in city {n}? " + "x" * 120},
        {
            "type": "function_call",
            "call_id": f"call_{n}",
            "name": "get_weather",
            "arguments": json.dumps({"city": f"city {n}"}),
        },
        {"type": "function_call_output", "call_id": f"call_{n}", "output": "sunny " * 60},
        {"role": "assistant", "content": "It is sunny. " * 30},
    ]


async def fill(url: str, sessions: int) -> None:
    records = [
        SessionRecord(f"s{n:07d}", make_turn(n), {"user_id": f"u{n % 1000}"})
        for n in range(sessions)
    ]
    async with open_store(url) as store:
        for start in range(0, sessions, 1000):
            await import_sessions(store, records[start : start + 1000])


def run_cli(*argv: str) -> float:
    """Seconds the command took; it must exit 0."""
    sink = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        code = cli(list(argv))
    elapsed = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"turnstore {' '.join(argv)} exited {code}:\n{sink.getvalue()[-2000:]}")
    return elapsed


def flush(server: RedisServer) -> None:
    with redis.Redis.from_url(server.url) as client:
        client.flushdb()


def measure(
    name: str,
    sessions: int,
    rounds: int,
    reset: Callable[[], None],
    argv: Callable[[], list[str]],
    profile_dir: Path | None,
) -> tuple[str, list[float]]:
    rates = []
    for _ in range(rounds):
        reset()
        rates.append(sessions / run_cli(*argv()))
        print(f"  {name}: {rates[-1]:,.0f} sessions/s", file=sys.stderr)
    if profile_dir is not None:
        try:
            from pyinstrument import Profiler
        except ImportError:
            print("  (pyinstrument is not installed: no profile)", file=sys.stderr)
        else:
            reset()
            profiler = Profiler(async_mode="enabled")
            with profiler:
                run_cli(*argv())
            target = profile_dir / (name.replace(" ", "_").replace(">", "") + ".html")
            target.write_text(profiler.output_html(), encoding="utf-8")
            print(f"  profile: {target}", file=sys.stderr)
    return name, rates


def main(sessions: int, rounds: int, profile_dir: Path | None) -> int:
    source, destination = start_redis(), start_redis()
    try:
        with tempfile.TemporaryDirectory(prefix="turnstore-transfer-") as tmp:
            tmp_path = Path(tmp)
            sqlite_source = f"sqlite:///{tmp_path / 'source.db'}"
            print(f"filling {sessions:,} sessions ...", file=sys.stderr)
            started = time.perf_counter()
            asyncio.run(fill(source.url, sessions))
            asyncio.run(fill(sqlite_source, sessions))
            print(f"  filled in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            export_file = tmp_path / "export.jsonl"
            counter = iter(range(1_000_000))

            def fresh_db() -> str:
                return f"sqlite:///{tmp_path / f'dst-{next(counter)}.db'}"

            def to_redis() -> None:
                flush(destination)

            dst_db = [fresh_db()]

            def new_file() -> None:
                dst_db[0] = fresh_db()

            results = [
                measure(
                    "migrate Redis -> Redis",
                    sessions,
                    rounds,
                    to_redis,
                    lambda: ["migrate", source.url, destination.url],
                    profile_dir,
                ),
                measure(
                    "migrate SQLite -> Redis",
                    sessions,
                    rounds,
                    to_redis,
                    lambda: ["migrate", sqlite_source, destination.url],
                    profile_dir,
                ),
                measure(
                    "migrate Redis -> SQLite",
                    sessions,
                    rounds,
                    new_file,
                    lambda: ["migrate", source.url, dst_db[0]],
                    profile_dir,
                ),
                measure(
                    "export Redis -> file",
                    sessions,
                    rounds,
                    lambda: None,
                    lambda: ["--url", source.url, "export", "-o", str(export_file)],
                    profile_dir,
                ),
                measure(
                    "import file -> Redis",
                    sessions,
                    rounds,
                    to_redis,
                    lambda: ["--url", destination.url, "import", str(export_file)],
                    profile_dir,
                ),
            ]
    finally:
        source.stop()
        destination.stop()
    print(f"\n{sessions:,} sessions of one 4-item turn, {rounds} rounds, sessions/s:\n")
    print(f"| {'command':<26} | {'median':>8} | {'min..max':>17} | target   |")
    print(f"|{'-' * 28}|{'-' * 10}|{'-' * 19}|----------|")
    for name, rates in results:
        target = TARGETS.get(name)
        median = statistics.median(rates)
        verdict = (
            ""
            if target is None
            else f">= {target:,.0f} " + ("met" if median >= target else "MISSED")
        )
        spread = f"{min(rates):,.0f}..{max(rates):,.0f}"
        print(f"| {name:<26} | {median:>8,.0f} | {spread:>17} | {verdict} |")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=Path, default=None)
    options = parser.parse_args()
    sys.exit(main(options.sessions, options.rounds, options.profile))
