"""Workload 2: Redis `get_items()` of a long session, with and without the `fast` extra."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import redis.asyncio as aioredis
import redis.utils
from agents.extensions.memory import RedisSession as SdkRedisSession

from benchmarks.report import Report, interleaved, log, paired_ratios
from benchmarks.turns import (
    REPO,
    SDK_PREFIX,
    Item,
    Op,
    Sizes,
    make_items,
)
from turnstore import RedisSession
from turnstore.items import HAS_ORJSON

# -- workload 2: Redis get_items() of a 2,000-item session ------------------------------------


async def fill_ours(session: RedisSession, items: list[Item], batch: int) -> None:
    for start in range(0, len(items), batch):
        await session.add_items(items[start : start + batch])


async def fill_sdk(session: SdkRedisSession, items: list[Item], batch: int) -> None:
    for start in range(0, len(items), batch):
        await session.add_items(items[start : start + batch])  # type: ignore[arg-type]


async def measure_full_reads(
    client: aioredis.Redis, sizes: Sizes, tag: str
) -> dict[str, list[float]]:
    """reads/s of get_items() on a history of `sizes.history_items` items, ours and SDK."""
    items = make_items(sizes.history_items)
    ours_session = RedisSession(f"w2-ours-{tag}", client=client)
    sdk_session = SdkRedisSession(f"w2-sdk-{tag}", redis_client=client, key_prefix=SDK_PREFIX)
    await ours_session.clear_session()
    await sdk_session.clear_session()
    await fill_ours(ours_session, items, 500)
    await fill_sdk(sdk_session, items, 500)

    async def ours(_r: int) -> Op:
        return lambda _i: ours_session.get_items()

    async def sdk(_r: int) -> Op:
        return lambda _i: sdk_session.get_items()

    return await interleaved(
        {"ours": ours, "sdk": sdk}, sizes.rounds, sizes.full_reads_per_round, blocks=5, warmup_ops=3
    )


_NO_FAST_BOOTSTRAP = (
    "import runpy, sys; "
    "sys.modules['orjson'] = None; sys.modules['hiredis'] = None; "
    "sys.argv = ['benchmarks', *sys.argv[1:]]; runpy.run_module('benchmarks', run_name='__main__')"
)


def run_no_fast_child(port: int, quick: bool) -> dict[str, Any] | None:
    """Workload 2 in a subprocess that cannot import orjson or hiredis (the `fast` extra)."""
    command = [sys.executable, "-c", _NO_FAST_BOOTSTRAP, "--no-fast-child", str(port)]
    if quick:
        command.append("--quick")
    env = {**os.environ, "TURNSTORE_NO_FAST": "1"}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    if proc.returncode != 0 or not proc.stdout.strip():
        log(f"no-fast child failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        return None
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


async def no_fast_child_main(port: int, quick: bool) -> None:
    client = aioredis.Redis(host="127.0.0.1", port=port)
    try:
        rates = await measure_full_reads(client, Sizes.for_mode(quick), "nofast")
    finally:
        await client.aclose()
    result = {"orjson": HAS_ORJSON, "hiredis": bool(redis.utils.HIREDIS_AVAILABLE), **rates}
    print(json.dumps(result))


async def bench_redis_full_read(client: aioredis.Redis, sizes: Sizes, report: Report) -> None:
    label = f"2. get_items() of {sizes.history_items:,}"
    log(f"{label} ...")
    rates = await measure_full_reads(client, sizes, "fast")
    report.add(label, "ours", rates["ours"], "reads/s")
    report.add(label, "SDK", rates["sdk"], "reads/s")
    fast = f"orjson={HAS_ORJSON}, hiredis={bool(redis.utils.HIREDIS_AVAILABLE)}"
    ratio = paired_ratios(rates["ours"], rates["sdk"])
    report.target("get_items() ours/SDK, fast extra", ratio, ">=", 2.0, fast)


def bench_redis_full_read_no_fast(port: int, sizes: Sizes, quick: bool, report: Report) -> None:
    label = f"2. get_items() of {sizes.history_items:,}, no fast extra"
    log(f"{label} (subprocess) ...")
    result = run_no_fast_child(port, quick)
    if result is None:
        report.target("get_items() ours/SDK, no fast extra", None, ">=", 1.0, "child failed")
        return
    report.add(label, "ours", result["ours"], "reads/s")
    report.add(label, "SDK", result["sdk"], "reads/s")
    active = f"orjson={result['orjson']}, hiredis={result['hiredis']}"
    ratio = paired_ratios(result["ours"], result["sdk"])
    report.target("get_items() ours/SDK, no fast extra", ratio, ">=", 1.0, active)
