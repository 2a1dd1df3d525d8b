"""Workload 3: `get_items(limit=20)` on a long session against a short one."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from benchmarks.redis_full_read import fill_ours
from benchmarks.report import Report, interleaved, log, paired_ratios
from benchmarks.turns import (
    Op,
    Sizes,
    make_items,
)
from turnstore import RedisSession

# -- workload 3: get_items(limit=20) on a big vs a small session ------------------------------


async def bench_redis_limit(client: aioredis.Redis, sizes: Sizes, report: Report) -> None:
    big = RedisSession("w3-big", client=client)
    small = RedisSession("w3-small", client=client)
    await big.clear_session()
    await small.clear_session()
    log(f"3. filling a {sizes.big_items:,}-item session ...")
    batch = make_items(1_000)
    started = time.perf_counter()
    for _ in range(sizes.big_items // len(batch)):
        await big.add_items(batch)
    fill_seconds = time.perf_counter() - started
    await fill_ours(small, make_items(sizes.small_items), 1_000)
    report.notes.append(
        f"workload 3 filled {sizes.big_items:,} items in {fill_seconds:.1f} s "
        f"({sizes.big_items / fill_seconds:,.0f} items/s, add_items of 1,000)"
    )

    async def on_big(_r: int) -> Op:
        return lambda _i: big.get_items(limit=20)

    async def on_small(_r: int) -> Op:
        return lambda _i: small.get_items(limit=20)

    label = "3. get_items(limit=20)"
    log(f"{label} ...")
    rates = await interleaved(
        {"big": on_big, "small": on_small}, sizes.rounds, sizes.limit_reads_per_round
    )
    report.add(label, f"ours, {sizes.big_items:,} items", rates["big"], "reads/s")
    report.add(label, f"ours, {sizes.small_items:,} items", rates["small"], "reads/s")
    # A latency ratio: big/small latency is small/big rate.
    ratio = paired_ratios(rates["small"], rates["big"])
    name = f"limit=20 latency {sizes.big_items:,} / {sizes.small_items:,} items"
    report.target(name, ratio, "<=", 1.2)
    await big.clear_session()  # give the memory back before the next workloads
