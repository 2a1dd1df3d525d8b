#!/usr/bin/env python
"""Side-by-side benchmarks of turnstore against the SDK's sessions (SPEC section 5).

Usage::

    python benchmarks/bench.py [--quick] [--only redis|sqlite|cluster] [--json FILE]

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
import gc
import importlib.util
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import redis.asyncio as aioredis
import redis.utils
from agents import SQLiteSession as SdkSQLiteSession
from agents.extensions.memory import RedisSession as SdkRedisSession
from redis.asyncio.cluster import ClusterNode, RedisCluster

import turnstore
from turnstore import RedisSession, RedisStore
from turnstore.items import HAS_ORJSON


class RedisServer(Protocol):
    """What this file uses of tests/servers.py's `RedisServer`."""

    host: str
    port: int

    def stop(self) -> None: ...


class ClusterTopology(Protocol):
    """What this file uses of tests/servers.py's `ClusterTopology`."""

    @property
    def nodes(self) -> Sequence[RedisServer]: ...

    @property
    def url(self) -> str: ...

    @property
    def startup_nodes(self) -> list[tuple[str, int]]: ...

    def stop(self) -> None: ...


REPO = Path(__file__).resolve().parent.parent
TTL_SECONDS = 3600
SDK_PREFIX = "agents:session"

Item = dict[str, Any]
Op = Callable[[int], Awaitable[object]]  # one timed operation; gets its index in the round
Setup = Callable[[int], Awaitable[Op]]  # per round (untimed): round number -> operation


# -- sizes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    rounds: int
    turns_per_round: int  # workload 1: sequential add_items calls per round
    history_items: int  # workloads 2 and 4: items of the "long" session
    full_reads_per_round: int  # workload 2: get_items() calls per round
    big_items: int  # workload 3: the big session
    small_items: int  # workload 3: the small session
    limit_reads_per_round: int  # workload 3 and 5: get_items(limit=20) calls per round
    sqlite_turns_per_round: int  # workload 5: add_items calls per round
    concurrent_sessions: int  # workload 6: conversations at once through one store
    concurrent_turns: int  # workload 6: turns of each conversation
    concurrent_rounds: int  # workload 6: rounds (each variant once per round)
    sqlite_concurrent_sessions: int  # workload 6, SQLite variant (information only)

    @classmethod
    def for_mode(cls, quick: bool) -> Sizes:
        if quick:
            return cls(
                rounds=7,
                turns_per_round=120,
                history_items=2_000,
                full_reads_per_round=6,
                big_items=100_000,
                small_items=100,
                limit_reads_per_round=200,
                sqlite_turns_per_round=50,
                concurrent_sessions=200,
                concurrent_turns=10,
                concurrent_rounds=2,
                sqlite_concurrent_sessions=100,
            )
        return cls(
            rounds=15,
            turns_per_round=300,
            history_items=2_000,
            full_reads_per_round=15,
            big_items=100_000,
            small_items=100,
            limit_reads_per_round=600,
            sqlite_turns_per_round=150,
            concurrent_sessions=1_000,
            concurrent_turns=10,
            concurrent_rounds=3,
            sqlite_concurrent_sessions=200,
        )


# -- realistic items -------------------------------------------------------------------------

_CITIES = ("Paris", "Lisbon", "Osaka", "Toronto", "Nairobi", "Santiago", "Oslo", "Hanoi")


def _hex_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(96):024x}"


def make_turn(n: int) -> list[Item]:
    """One agent turn of ~1 KB: user message, tool call, tool output, assistant answer."""
    rng = random.Random(n)
    city = _CITIES[n % len(_CITIES)]
    call_id = "call_" + _hex_id(rng)
    low, high = rng.randint(2, 15), rng.randint(16, 30)
    rain = round(rng.uniform(0, 12), 1)
    chance = rng.randint(10, 95)
    return [
        {
            "role": "user",
            "content": (
                f"Turn {n}: what will the weather be like in {city} tomorrow, and should I "
                "pack an umbrella for the walk to the office? Please keep it short."
            ),
        },
        {
            "type": "function_call",
            "id": "fc_" + _hex_id(rng),
            "call_id": call_id,
            "name": "get_weather_forecast",
            "arguments": json.dumps(
                {
                    "city": city,
                    "date": "tomorrow",
                    "units": "metric",
                    "include": ["temperature", "precipitation", "wind"],
                }
            ),
            "status": "completed",
        },
        {
            "type": "function_call_output",
            "call_id": call_id,
            "output": json.dumps(
                {
                    "city": city,
                    "temperature_c": {"min": low, "max": high},
                    "precipitation_mm": rain,
                    "precipitation_probability": chance / 100,
                    "wind_kph": rng.randint(3, 40),
                    "summary": "Showers in the morning, clearing in the afternoon.",
                }
            ),
        },
        {
            "id": "msg_" + _hex_id(rng),
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [
                {
                    "type": "output_text",
                    "text": (
                        f"Tomorrow in {city}: {low}-{high} C with showers in the morning "
                        f"({rain} mm, {chance}% chance) clearing in the afternoon. Yes, take "
                        "an umbrella for the walk to the office; you can leave the coat."
                    ),
                    "annotations": [],
                    "logprobs": [],
                }
            ],
        },
    ]


def make_items(count: int, first_turn: int = 0) -> list[Item]:
    items: list[Item] = []
    turn = first_turn
    while len(items) < count:
        items.extend(make_turn(turn))
        turn += 1
    return items[:count]


def json_size(items: Sequence[Item]) -> int:
    return sum(len(json.dumps(item, separators=(",", ":")).encode()) for item in items)


# -- encoding for the raw floor (the same encoder as ours with the `fast` extra) --------------

try:
    import orjson

    def _encode(item: Item) -> bytes:
        return bytes(orjson.dumps(item))

except ImportError:  # the no-fast child process hides orjson

    def _encode(item: Item) -> bytes:
        return json.dumps(item, separators=(",", ":")).encode()


# -- results ---------------------------------------------------------------------------------


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


# -- workload 1: Redis add_items of a 4-item turn ---------------------------------------------


async def bench_redis_add(
    client: aioredis.Redis, store: RedisStore, sizes: Sizes, report: Report
) -> None:
    """Ours as users open it (a session of a default `RedisStore`, which sends on its own
    direct lane), and ours over an injected client (redis-py's command path, as the SDK and
    the floor use), next to the SDK's session and the floor on that same injected client."""
    turns = [make_turn(n) for n in range(sizes.turns_per_round)]
    turn_bytes = json_size(turns[0])
    report.notes.append(f"a turn is 4 items, {turn_bytes} bytes of compact JSON")

    for ttl in (None, TTL_SECONDS):
        tag = "ttl" if ttl else "nottl"

        async def ours(r: int, ttl: int | None = ttl, tag: str = tag) -> Op:
            session = store.session(f"w1-ours-{tag}-{r}", ttl=ttl)
            return lambda i: session.add_items(turns[i])

        async def ours_injected(r: int, ttl: int | None = ttl, tag: str = tag) -> Op:
            session = RedisSession(f"w1-injected-{tag}-{r}", client=client, ttl=ttl)
            return lambda i: session.add_items(turns[i])

        async def sdk(r: int, ttl: int | None = ttl, tag: str = tag) -> Op:
            session = SdkRedisSession(
                f"w1-sdk-{tag}-{r}", redis_client=client, key_prefix=SDK_PREFIX, ttl=ttl
            )
            return lambda i: session.add_items(turns[i])  # type: ignore[arg-type]

        async def floor(r: int, ttl: int | None = ttl, tag: str = tag) -> Op:
            key = f"floor:w1-{tag}-{r}"
            if ttl is None:

                async def push(i: int) -> object:
                    return await client.rpush(key, *[_encode(item) for item in turns[i]])

                return push
            ttl_ms = ttl * 1000

            async def push_expire(i: int) -> object:
                pipe = client.pipeline(transaction=False)
                pipe.rpush(key, *[_encode(item) for item in turns[i]])
                pipe.pexpire(key, ttl_ms)
                return await pipe.execute()

            return push_expire

        label = "1. add_items turn" + (f" ttl={ttl}s" if ttl else "")
        log(f"{label} ...")
        rates = await interleaved(
            {"ours": ours, "injected": ours_injected, "sdk": sdk, "floor": floor},
            sizes.rounds,
            sizes.turns_per_round,
        )
        report.add(label, "ours (default store)", rates["ours"], "turns/s")
        report.add(label, "ours (injected client)", rates["injected"], "turns/s")
        report.add(label, "SDK", rates["sdk"], "turns/s")
        report.add(label, "raw floor", rates["floor"], "turns/s")
        suffix = " (TTL)" if ttl else ""
        injected = statistics.median(paired_ratios(rates["injected"], rates["floor"]))
        injected_sdk = statistics.median(paired_ratios(rates["injected"], rates["sdk"]))
        report.notes.append(
            f"add_items{suffix} over an injected client: {injected_sdk:.2f}x the SDK, "
            f"{injected:.2f}x the floor (no direct lane: redis-py's pool on every call)"
        )
        ours_vs_sdk = paired_ratios(rates["ours"], rates["sdk"])
        report.target(f"add_items ours/SDK{suffix}", ours_vs_sdk, ">=", 4.0)
        report.target(
            f"add_items ours/floor{suffix}", paired_ratios(rates["ours"], rates["floor"]), ">=", 0.8
        )


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
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def run_no_fast_child(port: int, quick: bool) -> dict[str, Any] | None:
    """Workload 2 in a subprocess that cannot import orjson or hiredis (the `fast` extra)."""
    command = [sys.executable, "-c", _NO_FAST_BOOTSTRAP, __file__, "--no-fast-child", str(port)]
    if quick:
        command.append("--quick")
    env = {**os.environ, "TURNSTORE_NO_FAST": "1"}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
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


# -- workload 4: memory per stored item --------------------------------------------------------


async def memory_usage(client: aioredis.Redis, key: str) -> int:
    value = await client.execute_command(  # type: ignore[no-untyped-call]
        "MEMORY", "USAGE", key, "SAMPLES", "0"
    )
    return int(value or 0)


async def stored_json_bytes(client: aioredis.Redis, key: str) -> tuple[int, int]:
    values = await client.lrange(key, 0, -1)
    return len(values), sum(len(v) for v in values)


async def zset_share(client: aioredis.Redis, key: str) -> float:
    """One member's share of a sorted set shared by many sessions."""
    members = int(await client.zcard(key))
    return await memory_usage(client, key) / members if members else 0.0


async def bench_redis_memory(client: aioredis.Redis, sizes: Sizes, report: Report) -> None:
    log("4. memory per item ...")
    turns = sizes.history_items // 4
    ours = RedisSession("w4-ours", client=client)
    sdk = SdkRedisSession("w4-sdk", redis_client=client, key_prefix=SDK_PREFIX)
    await ours.clear_session()
    await sdk.clear_session()
    for n in range(turns):  # turn by turn, as an agent writes them
        turn = make_turn(n)
        await ours.add_items(turn)
        await sdk.add_items(turn)  # type: ignore[arg-type]

    keys = ours.keys
    count, payload = await stored_json_bytes(client, keys.items)
    items_mem = await memory_usage(client, keys.items)
    meta_mem = await memory_usage(client, keys.meta)
    tokens_mem = await memory_usage(client, keys.tokens)
    tokens = int(await client.zcard(keys.tokens))
    index_share = await zset_share(client, keys.bucket.index)
    expiry_share = await zset_share(client, keys.bucket.expiry)
    ours_total = items_mem + meta_mem + tokens_mem + index_share + expiry_share

    sdk_base = f"{SDK_PREFIX}:w4-sdk"
    sdk_count, sdk_payload = await stored_json_bytes(client, f"{sdk_base}:messages")
    sdk_items_mem = await memory_usage(client, f"{sdk_base}:messages")
    sdk_total = sdk_items_mem + sum(
        [await memory_usage(client, sdk_base), await memory_usage(client, f"{sdk_base}:counter")]
    )

    label = f"4. memory, {count:,} items"
    unit = "x JSON"
    report.add(label, "ours: items LIST", [items_mem / payload], unit)
    report.add(label, "ours: all keys", [ours_total / payload], unit)
    report.add(label, "SDK: messages LIST", [sdk_items_mem / sdk_payload], unit)
    report.add(label, "SDK: all keys", [sdk_total / sdk_payload], unit)
    report.notes.append(
        f"workload 4: ours {count:,} items = {payload:,} JSON bytes; LIST {items_mem:,} B, "
        f"meta {meta_mem:,} B, tokens {tokens_mem:,} B ({tokens} live batch tokens), "
        f"bucket index share {index_share + expiry_share:,.0f} B; "
        f"SDK {sdk_count:,} items = {sdk_payload:,} JSON bytes, LIST {sdk_items_mem:,} B"
    )
    report.target("memory: ours items LIST / JSON", items_mem / payload, "<=", 1.15)


# -- workload 5: SQLite ----------------------------------------------------------------------


async def bench_sqlite(sizes: Sizes, report: Report) -> None:
    try:
        from turnstore.sqlite import SQLiteSession
    except ImportError as exc:
        log(f"5. SQLite skipped: {exc}")
        report.notes.append(f"workload 5 skipped: turnstore.sqlite not importable ({exc})")
        report.target("SQLite add_items ours/SDK", None, ">=", 1.5)
        report.target("SQLite get_items(limit=20) ours/SDK", None, ">=", 1.0)
        return

    turns = [make_turn(n) for n in range(sizes.sqlite_turns_per_round)]
    with tempfile.TemporaryDirectory(prefix="turnstore-bench-") as tmp:
        ours_db, sdk_db = Path(tmp, "ours.db"), Path(tmp, "sdk.db")
        opened: list[Any] = []

        def ours_session(session_id: str) -> SQLiteSession:
            session = SQLiteSession(session_id, ours_db)
            opened.append(session)
            return session

        def sdk_session(session_id: str) -> SdkSQLiteSession:
            session = SdkSQLiteSession(session_id, sdk_db)
            opened.append(session)
            return session

        try:

            async def ours_add(r: int) -> Op:
                session = ours_session(f"w5-{r}")
                return lambda i: session.add_items(turns[i])

            async def sdk_add(r: int) -> Op:
                session = sdk_session(f"w5-{r}")
                return lambda i: session.add_items(turns[i])  # type: ignore[arg-type]

            label = "5. SQLite add_items turn"
            log(f"{label} ...")
            rates = await interleaved(
                {"ours": ours_add, "sdk": sdk_add}, sizes.rounds, sizes.sqlite_turns_per_round
            )
            report.add(label, "ours", rates["ours"], "turns/s")
            report.add(label, "SDK", rates["sdk"], "turns/s")
            ratio = paired_ratios(rates["ours"], rates["sdk"])
            report.target("SQLite add_items ours/SDK", ratio, ">=", 1.5)

            items = make_items(sizes.history_items)
            ours_long, sdk_long = ours_session("w5-long"), sdk_session("w5-long")
            for start in range(0, len(items), 500):
                await ours_long.add_items(items[start : start + 500])
                await sdk_long.add_items(items[start : start + 500])  # type: ignore[arg-type]

            async def ours_read(_r: int) -> Op:
                return lambda _i: ours_long.get_items(limit=20)

            async def sdk_read(_r: int) -> Op:
                return lambda _i: sdk_long.get_items(limit=20)

            label = f"5. SQLite get_items(limit=20) of {sizes.history_items:,}"
            log(f"{label} ...")
            rates = await interleaved(
                {"ours": ours_read, "sdk": sdk_read}, sizes.rounds, sizes.limit_reads_per_round
            )
            report.add(label, "ours", rates["ours"], "reads/s")
            report.add(label, "SDK", rates["sdk"], "reads/s")
            ratio = paired_ratios(rates["ours"], rates["sdk"])
            report.target("SQLite get_items(limit=20) ours/SDK", ratio, ">=", 1.0)
        except Exception as exc:  # the backend is written in parallel: report, don't crash
            log(f"5. SQLite failed: {exc!r}")
            report.notes.append(f"workload 5 failed: {exc!r}")
        finally:
            for session in opened:
                closing = session.close()
                if closing is not None:
                    await closing


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


# -- workload 7: Redis Cluster vs standalone ---------------------------------------------------

CLUSTER_PREFIX = "turnstore"  # the stores' default key prefix


def _short(exc: BaseException, limit: int, *, first_sentence: bool = False) -> str:
    message = " ".join(str(exc).split())
    if first_sentence and ". " in message:
        message = message[: message.index(". ") + 1]
    if len(message) > limit:
        message = message[: limit - 3] + "..."
    return f"{type(exc).__name__}: {message}"


async def try_sdk_on_cluster(cluster: ClusterTopology) -> BaseException | int:
    """Try the SDK's RedisSession.add_items once on the cluster: what it raised, or (should a
    later SDK manage it) how many items it then reads back.

    The same RedisCluster client first writes a plain key, so that a failure of the SDK's
    call is the SDK's, not the cluster's."""
    client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in cluster.startup_nodes])
    try:
        await client.rpush("w7-probe", b"plain write")
        await client.delete("w7-probe")
        try:
            session = SdkRedisSession("w7-sdk", redis_client=client, key_prefix=SDK_PREFIX)
            await session.add_items(make_turn(0))  # type: ignore[arg-type]
        except Exception as exc:  # measured, not assumed: whatever it raises is the answer
            return exc
        return len(await session.get_items())
    finally:
        await client.aclose()


async def sessions_per_node(cluster: ClusterTopology) -> list[tuple[str, int, int]]:
    """(node, sessions, keys) of every master: each node's own SCAN of our `:items` keys
    and its DBSIZE, asked of the node itself (not computed from slots)."""
    counts = []
    for node in cluster.nodes:
        client = aioredis.Redis(host=node.host, port=node.port)
        try:
            keys = int(await client.dbsize())
            sessions = 0
            async for _ in client.scan_iter(match=f"{CLUSTER_PREFIX}:*:s:*:items", count=1000):
                sessions += 1
        finally:
            await client.aclose()
        counts.append((f"{node.host}:{node.port}", sessions, keys))
    return counts


async def flush_cluster(cluster: ClusterTopology) -> None:
    for node in cluster.nodes:
        client = aioredis.Redis(host=node.host, port=node.port)
        try:
            await client.flushdb()
        finally:
            await client.aclose()


async def bench_cluster(
    server: RedisServer, cluster: ClusterTopology, sizes: Sizes, report: Report
) -> None:
    """Workload 7, for information (no SPEC target): ours on a 3-master cluster vs ours on the
    standalone server, each through one `RedisStore.from_url` (a blocking pool of 64), and the
    SDK's RedisSession tried once on the cluster. Flushes both after every concurrent run."""
    add_label = "7. Cluster: add_items turn"
    count, turns = sizes.concurrent_sessions, sizes.concurrent_turns
    load_label = f"7. Cluster: {count:,} sessions x {turns} turns"
    masters = len(cluster.nodes)
    cluster_name = f"ours: {masters}-master cluster"

    log("7. Cluster: the SDK's RedisSession on the cluster ...")
    outcome = await try_sdk_on_cluster(cluster)
    if isinstance(outcome, BaseException):
        row_text = f"cannot write ({_short(outcome, 80, first_sentence=True)})"
        note_text = f"cannot write ({_short(outcome, 240)})"
    else:
        row_text = note_text = f"add_items wrote, {outcome} items read back (not benchmarked)"
    log(f"    SDK RedisSession on Cluster: {note_text}")
    report.notes.append(f"workload 7: SDK RedisSession on Cluster: {note_text}")
    report.add_text("7. Cluster: SDK RedisSession", "SDK on the cluster", row_text)

    stores = {
        "cluster": RedisStore.from_url(cluster.url),
        "standalone": RedisStore.from_url(f"redis://{server.host}:{server.port}/0"),
    }
    admin = aioredis.Redis(host=server.host, port=server.port)
    conversation = [make_turn(n) for n in range(turns)]

    async def flush(name: str) -> None:
        if name == "cluster":
            await flush_cluster(cluster)
        else:
            await admin.flushdb()

    def add_setup(name: str) -> Setup:
        store = stores[name]
        add_turns = [make_turn(n) for n in range(sizes.turns_per_round)]

        async def setup(r: int) -> Op:
            session = store.session(f"w7-seq-{r}")
            return lambda i: session.add_items(add_turns[i])

        return setup

    rates: dict[str, list[float]] = {"cluster": [], "standalone": []}
    errors: dict[str, list[str]] = {"cluster": [], "standalone": []}
    spread: list[tuple[str, int, int]] = []
    try:
        log(f"{add_label} ...")
        seq = await interleaved(
            {name: add_setup(name) for name in stores}, sizes.rounds, sizes.turns_per_round
        )
        report.add(add_label, cluster_name, seq["cluster"], "turns/s")
        report.add(add_label, "ours: standalone", seq["standalone"], "turns/s")
        report.add(
            add_label,
            "cluster / standalone",
            paired_ratios(seq["cluster"], seq["standalone"]),
            "x",
        )
        for name in stores:
            await flush(name)

        log(f"{load_label} ...")
        for name, store in stores.items():  # warm-up: scripts loaded, connections opened
            warm = [store.session(f"w7-warm-{n}") for n in range(128)]
            await concurrent_conversations(warm, conversation[:1])
            await flush(name)
        for r in range(sizes.concurrent_rounds):
            for name in ("cluster", "standalone") if r % 2 == 0 else ("standalone", "cluster"):
                sessions = [stores[name].session(f"w7-{r}-{n}") for n in range(count)]
                result = await concurrent_conversations(sessions, conversation)
                rates[name].append(result.rate)
                errors[name] += result.errors
                if name == "cluster":
                    spread = await sessions_per_node(cluster)
                await flush(name)
    finally:
        for store in stores.values():
            await store.close()
        await admin.aclose()

    report.add(load_label, cluster_name, rates["cluster"], "turns/s")
    report.add(load_label, "ours: standalone", rates["standalone"], "turns/s")
    load_ratios = paired_ratios(rates["cluster"], rates["standalone"])
    report.add(load_label, "cluster / standalone", load_ratios, "x")
    report_load_errors(report, "workload 7", errors)

    spread_label = f"7. Cluster: where {count:,} sessions are"
    for node, on_node, keys in spread:
        text = f"{on_node:,} sessions ({keys:,} keys: DBSIZE)"
        report.add(spread_label, node, [float(on_node)], "sessions", text)
    used = sum(on_node > 0 for _, on_node, _ in spread)
    total = sum(on_node for _, on_node, _ in spread)
    add_ratio = statistics.median(paired_ratios(seq["cluster"], seq["standalone"]))
    load_ratio = statistics.median(load_ratios)
    report.notes.append(
        f"workload 7 (information, no SPEC target): cluster/standalone add_items "
        f"{add_ratio:.2f}x, concurrent {load_ratio:.2f}x; errors cluster "
        f"{len(errors['cluster'])}, standalone {len(errors['standalone'])}; the last cluster "
        f"run left {total:,} of {count:,} sessions, on {used} of {masters} masters"
    )


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


# -- main ------------------------------------------------------------------------------------


def servers_module() -> Any:
    """tests/servers.py, the test suite's starter, loaded once.

    It is loaded by path: putting tests/ on sys.path would shadow redis-py with the
    tests/redis package.
    """
    name = "_turnstore_bench_servers"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "tests" / "servers.py")
    if spec is None or spec.loader is None:
        raise RuntimeError("cannot load tests/servers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def start_server() -> RedisServer:
    """Start redis-server with the test suite's starter (free loopback port <= 55535,
    `--save "" --appendonly no`, a watchdog that kills it should this process die)."""
    server: RedisServer = servers_module().start_redis()
    return server


def run_cluster(server: RedisServer, sizes: Sizes, report: Report) -> None:
    """Workload 7: start a 3-master cluster (the test suite's `start_cluster`), measure, stop
    it. A cluster that does not start is reported, not raised."""
    log("7. Cluster: starting 3 masters ...")
    started = time.perf_counter()
    try:
        cluster: ClusterTopology = servers_module().start_cluster(masters=3)
    except Exception as exc:
        log(f"7. Cluster skipped: {exc!r}")
        report.notes.append(f"workload 7 skipped: the cluster did not start ({_short(exc, 200)})")
        return
    try:
        startup = time.perf_counter() - started
        asyncio.run(bench_cluster(server, cluster, sizes, report))
    finally:
        cluster.stop()
    report.notes.append(
        f"workload 7 took {time.perf_counter() - started:.1f} s "
        f"(starting the cluster {startup:.1f} s)"
    )


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


async def server_version(server: RedisServer) -> str:
    client = aioredis.Redis(host=server.host, port=server.port)
    try:
        info = await client.info("server")
        return f"{info['redis_version']} (port {server.port})"
    finally:
        await client.aclose()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (< 40 s)")
    parser.add_argument(
        "--only",
        choices=("redis", "sqlite", "cluster"),
        help="run one part only: redis = workloads 1-4 and 6 on the standalone server, "
        "sqlite = 5 and 6 on SQLite, cluster = 7",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results as JSON")
    parser.add_argument("--no-fast-child", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.no_fast_child is not None:
        asyncio.run(no_fast_child_main(args.no_fast_child, args.quick))
        return 0

    sizes = Sizes.for_mode(args.quick)
    report = Report()
    started = time.perf_counter()
    server: RedisServer | None = None
    try:
        if args.only != "sqlite":  # workload 7 compares the cluster with this server
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
