#!/usr/bin/env python
"""Side-by-side benchmarks of turnstore against the SDK's sessions (SPEC section 5).

Usage::

    python -m benchmarks [--quick] [--only redis|sqlite|cluster|startup] [--json FILE]
    python -m benchmarks --only scale [--sizes 10000,100000] [--backends redis,sqlite] [--calls N]

One process, one `redis-server` started here on a free loopback port (`--save ""
--appendonly no`), stopped at the end; workload 7 also starts a 3-master Redis Cluster. Every
workload runs its variants in interleaved rounds (the order rotates each round) and reports the
median round, so that the noise of a shared machine hits every variant alike. Timings are
printed, never asserted: each SPEC target is marked met or missed. See benchmarks/README.md
for what each number means.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import redis.asyncio as aioredis
from tests.servers import RedisServer, start_redis

from benchmarks.cluster import run_cluster
from benchmarks.concurrency import bench_redis_concurrent, bench_sqlite_concurrent
from benchmarks.redis_add import bench_redis_add
from benchmarks.redis_full_read import (
    bench_redis_full_read,
    bench_redis_full_read_no_fast,
    no_fast_child_main,
)
from benchmarks.redis_limit import bench_redis_limit
from benchmarks.redis_memory import bench_redis_memory
from benchmarks.report import (
    Report,
    environment,
    print_environment,
    print_report,
    server_version,
)
from benchmarks.scale import BACKENDS, DEFAULT_SIZES, parse_backends, parse_sizes, run_scale
from benchmarks.sqlite_calls import bench_sqlite
from benchmarks.startup import bench_startup
from benchmarks.turns import (
    Sizes,
)
from turnstore import RedisStore


def start_server() -> RedisServer:
    """Start redis-server with the test suite's starter (free loopback port <= 55535,
    `--save "" --appendonly no`, a watchdog that kills it should this process die)."""
    return start_redis()


async def run_redis(server: RedisServer, sizes: Sizes, report: Report) -> None:
    client = aioredis.Redis(host=server.host, port=server.port)
    store = RedisStore.from_url(f"redis://{server.host}:{server.port}/0")
    try:
        await bench_redis_add(client, store, sizes, report)
        await bench_redis_full_read(client, sizes, report)
        await bench_redis_limit(client, sizes, report)
        await bench_redis_memory(client, sizes, report)
    finally:
        await store.close()
        await client.aclose()
    await bench_redis_concurrent(server, sizes, report)  # last: it flushes the database


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (< 40 s)")
    parser.add_argument(
        "--only",
        choices=("redis", "sqlite", "cluster", "startup", "scale"),
        help="run one part only: redis = workloads 1-4 and 6 on the standalone server, "
        "sqlite = 5 and 6 on SQLite, cluster = 7, startup = 8 (the command's start-up), "
        "scale = the scale benchmark (not part of a run without --only: it takes tens of "
        "minutes)",
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=list(DEFAULT_SIZES),
        metavar="N,N,...",
        help="scale: the store's sizes, grown in order (default: 10000,100000,1000000)",
    )
    parser.add_argument(
        "--backends",
        type=parse_backends,
        default=list(BACKENDS),
        metavar="NAME,...",
        help=f"scale: which of {','.join(BACKENDS)} to grow (default: all)",
    )
    parser.add_argument(
        "--calls",
        type=int,
        default=5,
        metavar="N",
        help="scale: timed calls of each kind per size, the median is shown (default: 5)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results as JSON")
    parser.add_argument("--no-fast-child", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.only == "scale":
        return run_scale(args.sizes, args.backends, max(1, args.calls), args.json)
    if args.no_fast_child is not None:
        asyncio.run(no_fast_child_main(args.no_fast_child, args.quick))
        return 0

    sizes = Sizes.for_mode(args.quick)
    report = Report()
    started = time.perf_counter()
    server: RedisServer | None = None
    try:
        if args.only not in ("sqlite", "startup"):  # workload 7 compares with this server
            server = start_server()
        version = asyncio.run(server_version(server)) if server else None
        report.environment = environment(version)
        print_environment(report.environment)
        if server is not None and args.only in (None, "redis"):
            asyncio.run(run_redis(server, sizes, report))
            bench_redis_full_read_no_fast(server.port, sizes, args.quick, report)
        if server is not None and args.only in (None, "cluster"):
            run_cluster(server, sizes, report)
        if args.only in (None, "sqlite"):
            asyncio.run(bench_sqlite(sizes, report))
            asyncio.run(bench_sqlite_concurrent(sizes, report))
        if args.only in (None, "startup"):
            bench_startup(sizes.rounds, report)
    finally:
        if server is not None:
            server.stop()
    report.notes.append(f"total run time {time.perf_counter() - started:.0f} s")
    print_report(report, sizes, args.quick)
    if args.json:
        payload = {
            "mode": "quick" if args.quick else "full",
            "environment": report.environment,
            "rows": [asdict(row) for row in report.rows],
            "targets": [{**asdict(t), "status": t.status} for t in report.targets],
            "notes": report.notes,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
