"""Results shared by every workload: rows, targets, interleaved rounds, the printed report."""

from __future__ import annotations

import gc
import os
import platform
import sqlite3
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata

import redis.asyncio as aioredis
import redis.utils
from tests.servers import RedisServer

import turnstore

# -- results ---------------------------------------------------------------------------------
from benchmarks.turns import Setup, Sizes
from turnstore.items import HAS_ORJSON


@dataclass
class Row:
    workload: str
    variant: str
    median: float | None  # None: a row that reports `text` instead of a number
    low: float | None
    high: float | None
    unit: str
    samples: list[float] = field(repr=False)
    text: str = ""  # printed instead of median, min..max and unit when set


@dataclass
class Target:
    name: str
    measured: float | None  # None: not measured
    op: str  # ">=" or "<="
    bound: float
    note: str = ""
    quartiles: tuple[float, float] | None = None  # of the per-round ratios
    unit: str = "x"  # what `measured` counts: a ratio unless said otherwise

    @property
    def status(self) -> str:
        if self.measured is None:
            return "skipped"
        ok = self.measured >= self.bound if self.op == ">=" else self.measured <= self.bound
        return "met" if ok else "MISSED"


@dataclass
class Report:
    environment: dict[str, str] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self, workload: str, variant: str, samples: list[float], unit: str, text: str = ""
    ) -> float:
        med = statistics.median(samples)
        row = Row(workload, variant, med, min(samples), max(samples), unit, samples, text)
        self.rows.append(row)
        return med

    def add_text(self, workload: str, variant: str, text: str) -> None:
        """A row that says something instead of a number (e.g. that a variant cannot run)."""
        self.rows.append(Row(workload, variant, None, None, None, "", [], text))

    def target(
        self,
        name: str,
        measured: Sequence[float] | float | None,
        op: str,
        bound: float,
        note: str = "",
    ) -> None:
        """Record a target; `measured` is one value or per-round ratios (their median counts)."""
        if measured is None or isinstance(measured, float):
            self.targets.append(Target(name, measured, op, bound, note))
            return
        q1, _, q3 = statistics.quantiles(measured, n=4, method="inclusive")
        self.targets.append(
            Target(name, statistics.median(measured), op, bound, note, quartiles=(q1, q3))
        )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- timing ----------------------------------------------------------------------------------


async def interleaved(
    setups: dict[str, Setup],
    rounds: int,
    ops_per_round: int,
    *,
    blocks: int = 10,
    warmup_ops: int = 20,
) -> dict[str, list[float]]:
    """Operations per second of every variant, one sample per round, variants interleaved.

    Each round builds every variant's operation untimed (e.g. a fresh session), then runs
    `ops_per_round` sequential awaits of each, in `blocks` slices that alternate between the
    variants (in an order that rotates every round), so that a slow spell of the machine
    lands on all of them. A warm-up round (untimed) loads scripts and opens connections.
    """
    names = list(setups)
    for name in names:
        op = await setups[name](-1)
        for i in range(min(warmup_ops, ops_per_round)):
            await op(i)
    blocks = max(1, min(blocks, ops_per_round))
    bounds = [ops_per_round * b // blocks for b in range(blocks + 1)]
    rates: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        order = names[shift:] + names[:shift]
        ops = {name: await setups[name](r) for name in order}
        elapsed = dict.fromkeys(order, 0.0)
        gc.collect()
        for b in range(blocks):
            for name in order:
                op = ops[name]
                started = time.perf_counter()
                for i in range(bounds[b], bounds[b + 1]):
                    await op(i)
                elapsed[name] += time.perf_counter() - started
        for name in order:
            rates[name].append(ops_per_round / elapsed[name])
    return rates


def paired_ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """a[r] / b[r] for every round r: both ran interleaved in round r, so a slow spell of the
    machine slows both and mostly cancels out of the ratio. A target takes their median."""
    return [x / y for x, y in zip(a, b, strict=True)]


# -- environment, output ---------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment(server_version: str | None) -> dict[str, str]:
    return {
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "platform": f"{platform.platform()}, {os.cpu_count()} CPUs",
        "redis-server": server_version or "not started",
        "redis-py": _version("redis"),
        "hiredis": f"{_version('hiredis')} (active: {bool(redis.utils.HIREDIS_AVAILABLE)})",
        "orjson": f"{_version('orjson')} (active: {HAS_ORJSON})",
        "sqlite3": sqlite3.sqlite_version,
        "openai-agents": _version("openai-agents"),
        "turnstore": turnstore.__version__,
    }


async def server_version(server: RedisServer) -> str:
    client = aioredis.Redis(host=server.host, port=server.port)
    try:
        info = await client.info("server")
        return f"{info['redis_version']} (port {server.port})"
    finally:
        await client.aclose()


def print_environment(env: dict[str, str]) -> None:
    print("Environment")
    for key, value in env.items():
        print(f"  {key:<15} {value}")
    print(flush=True)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.3g}" if value < 10 else f"{value:.1f}"


def print_report(report: Report, sizes: Sizes, quick: bool) -> None:
    mode = "quick" if quick else "full"
    print(f"Results ({mode} mode, median of {sizes.rounds} interleaved rounds; min..max)")
    header = f"  {'workload':<40} {'variant':<22} {'median':>10}  {'min..max':<19} unit"
    print(header)
    print("  " + "-" * (len(header) - 2))
    # Stable sort by workload number: the no-fast subprocess of workload 2 runs last.
    for row in sorted(report.rows, key=lambda row: row.workload.split(".")[0]):
        if row.text or row.median is None or row.low is None or row.high is None:
            print(f"  {row.workload:<40} {row.variant:<22} {row.text}")
            continue
        spread = f"{_number(row.low)}..{_number(row.high)}" if len(row.samples) > 1 else ""
        print(
            f"  {row.workload:<40} {row.variant:<22} {_number(row.median):>10}  "
            f"{spread:<19} {row.unit}"
        )
    print()
    print("SPEC targets")
    if not report.targets:
        print("  none in this run")
    for t in report.targets:
        measured = "-" if t.measured is None else f"{t.measured:.3g}{t.unit}"
        parts = [f"rounds' IQR {t.quartiles[0]:.3g}..{t.quartiles[1]:.3g}"] if t.quartiles else []
        parts += [t.note] if t.note else []
        note = f"  ({'; '.join(parts)})" if parts else ""
        print(f"  {t.name:<44} {measured:>8}  {t.op} {t.bound:<4}  {t.status}{note}")
    if report.notes:
        print()
        print("Notes")
        for note in report.notes:
            print(f"  - {note}")
    missed = sum(t.status == "MISSED" for t in report.targets)
    print()
    print(f"{len(report.targets)} targets: {missed} missed", flush=True)
