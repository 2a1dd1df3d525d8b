"""Workload 6: 1,000 concurrent conversations through one default store."""

from __future__ import annotations

import asyncio
import gc
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from agents import SQLiteSession as SdkSQLiteSession
from agents.extensions.memory import RedisSession as SdkRedisSession
from tests.servers import RedisServer

from benchmarks.report import Report, Target, log, paired_ratios
from benchmarks.turns import (
    SDK_PREFIX,
    Item,
    Sizes,
    make_turn,
)
from turnstore import RedisStore

# -- workload 6: concurrent sessions through one store ----------------------------------------


@dataclass
class LoadResult:
    rate: float  # completed turns per second
    errors: list[str]


async def concurrent_conversations(sessions: Sequence[Any], turns: list[list[Item]]) -> LoadResult:
    """Every session converses at once: per turn a get_items() then an add_items() of the
    turn. Afterwards (untimed) each session must hold exactly its turns, in order."""
    done = 0

    async def converse(session: Any) -> None:
        nonlocal done
        for turn in turns:
            await session.get_items()
            await session.add_items(turn)
            done += 1

    gc.collect()
    started = time.perf_counter()
    results = await asyncio.gather(*(converse(s) for s in sessions), return_exceptions=True)
    elapsed = time.perf_counter() - started
    errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    expected = [item for turn in turns for item in turn]
    histories = await asyncio.gather(*(s.get_items() for s in sessions), return_exceptions=True)
    for session, history in zip(sessions, histories, strict=True):
        if isinstance(history, BaseException):
            errors.append(f"reading back {session.session_id}: {type(history).__name__}: {history}")
        elif history != expected:
            errors.append(
                f"{session.session_id} holds {len(history)} items, expected {len(expected)}"
            )
    return LoadResult(done / elapsed, errors)


def report_load_errors(report: Report, workload: str, errors: dict[str, list[str]]) -> None:
    for name, found in errors.items():
        if not found:
            continue
        kinds = sorted(set(found))
        log(f"{workload} {name}: {len(found)} errors; first kinds:")
        for kind in kinds[:5]:
            log(f"    {kind}")
        report.notes.append(f"{workload} {name}: {len(found)} errors, e.g. {kinds[0]}")


async def bench_redis_concurrent(server: RedisServer, sizes: Sizes, report: Report) -> None:
    """Workload 6: ours through one default store (a blocking pool of 64) vs the SDK's
    sessions sharing one blocking pool of 64. Flushes the database after each run."""
    count, turns = sizes.concurrent_sessions, sizes.concurrent_turns
    label = f"6. {count:,} sessions x {turns} turns, concurrent"
    log(f"{label} ...")
    store = RedisStore.from_url(f"redis://{server.host}:{server.port}/0")
    sdk_pool = aioredis.BlockingConnectionPool(
        host=server.host, port=server.port, max_connections=64
    )
    sdk_client = aioredis.Redis(connection_pool=sdk_pool)
    admin = aioredis.Redis(host=server.host, port=server.port)
    conversation = [make_turn(n) for n in range(turns)]

    def sessions_of(name: str, tag: str, how_many: int) -> list[Any]:
        if name == "ours":
            return [store.session(f"w6-{tag}-{n}") for n in range(how_many)]
        return [
            SdkRedisSession(f"w6-{tag}-{n}", redis_client=sdk_client, key_prefix=SDK_PREFIX)
            for n in range(how_many)
        ]

    rates: dict[str, list[float]] = {"ours": [], "sdk": []}
    errors: dict[str, list[str]] = {"ours": [], "sdk": []}
    try:
        for name in rates:  # warm-up: scripts loaded, every pool connection opened
            await concurrent_conversations(sessions_of(name, "warm", 128), conversation[:1])
        await admin.flushdb()
        for r in range(sizes.concurrent_rounds):
            for name in ("ours", "sdk") if r % 2 == 0 else ("sdk", "ours"):
                result = await concurrent_conversations(
                    sessions_of(name, str(r), count), conversation
                )
                rates[name].append(result.rate)
                errors[name] += result.errors
                await admin.flushdb()
    finally:
        await store.close()
        await sdk_client.aclose()
        await sdk_pool.disconnect()
        await admin.aclose()
    report.add(label, "ours: one default store", rates["ours"], "turns/s")
    report.add(label, "SDK: one pool of 64", rates["sdk"], "turns/s")
    report_load_errors(report, "workload 6", errors)
    report.targets.append(
        Target(
            f"concurrent: errors of ours ({count:,} sessions)",
            len(errors["ours"]),
            "<=",
            0,
            unit="",
        )
    )
    report.target(
        "concurrent turns/s ours/SDK",
        paired_ratios(rates["ours"], rates["sdk"]),
        ">=",
        3.0,
        f"SDK errors: {len(errors['sdk'])}",
    )


async def bench_sqlite_concurrent(sizes: Sizes, report: Report) -> None:
    """Workload 6 on SQLite, for information (no SPEC target): ours through one SQLiteStore
    vs the SDK's SQLiteSession, every session of a variant on one file."""
    from turnstore import SQLiteStore

    count, turns = sizes.sqlite_concurrent_sessions, sizes.concurrent_turns
    label = f"6. SQLite {count:,} sessions x {turns} turns"
    log(f"{label} ...")
    conversation = [make_turn(n) for n in range(turns)]
    rates: dict[str, list[float]] = {"ours": [], "sdk": []}
    errors: dict[str, list[str]] = {"ours": [], "sdk": []}
    with tempfile.TemporaryDirectory(prefix="turnstore-bench-") as tmp:
        for r in range(sizes.concurrent_rounds):
            for name in ("ours", "sdk") if r % 2 == 0 else ("sdk", "ours"):
                path = Path(tmp, f"{name}-{r}.db")
                if name == "ours":
                    store = SQLiteStore(path)
                    sessions: list[Any] = [store.session(f"w6-{n}") for n in range(count)]
                else:
                    sessions = [SdkSQLiteSession(f"w6-{n}", path) for n in range(count)]
                try:
                    result = await concurrent_conversations(sessions, conversation)
                finally:
                    if name == "ours":
                        await store.close()
                    else:
                        for session in sessions:
                            closing = session.close()
                            if closing is not None:
                                await closing
                rates[name].append(result.rate)
                errors[name] += result.errors
    report.add(label, "ours: one SQLiteStore", rates["ours"], "turns/s")
    report.add(label, "SDK: SQLiteSession", rates["sdk"], "turns/s")
    report_load_errors(report, "workload 6 SQLite", errors)
    ratio = statistics.median(paired_ratios(rates["ours"], rates["sdk"]))
    report.notes.append(
        f"workload 6 SQLite (information, no SPEC target): ours/SDK {ratio:.2f}x, "
        f"errors ours {len(errors['ours'])}, SDK {len(errors['sdk'])}"
    )
