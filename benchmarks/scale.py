"""Scale: listing, counting, purging, exporting and migrating as a store grows (issue 13 item 7).

Usage::

    python -m benchmarks --only scale [--sizes 10000,100000,1000000]
                         [--backends redis,cluster,sqlite] [--calls 5] [--json FILE]

Each backend gets one store, filled with sessions of one 4-item turn and `user_id` metadata
(500 distinct users), then grown from one size to the next (never refilled). At every size
it times the median of a few calls of each listing call, the page floor of raw redis-py,
export and copy rates, memory per session, and last `purge_expired()` after as many sessions
again have expired. The run ends with the CLI's `migrate` (a subprocess) of a fixed source
and the memory of 20-turn conversations, ours against the SDK's `RedisSession`. Nothing is
asserted: every target is printed PASS or MISS. See benchmarks/README.md ("Scale").

Every phase has a timeout (a phase that runs out is reported, and a fill that runs out ends
that backend's growth). Filling runs at 550-900 sessions/s per backend on a 2-core machine and
is most of the run: `--sizes 10000,100000` on all three backends took 20 minutes. 1,000,000
on standalone Redis would take about 45 minutes more (900,000 sessions, then 1,000,000
expiring ones for the purge) and about 1.9 GB of Redis memory for the store (1,910 B per
session at 100,000), up to as much again for the expiring half until it is purged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from agents.extensions.memory import RedisSession as SdkRedisSession
from tests.servers import ClusterTopology, RedisServer, start_cluster, start_redis

from benchmarks.redis_memory import memory_usage
from benchmarks.report import Target, environment, log, print_environment, server_version
from benchmarks.turns import REPO, SDK_PREFIX, json_size, make_turn
from turnstore import RedisStore, SQLiteStore
from turnstore.backend import SessionWrite
from turnstore.errors import ConfigurationError
from turnstore.items import encode_item
from turnstore.records import export_sessions, import_sessions
from turnstore.store import SessionStore

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
BACKENDS = ("redis", "cluster", "sqlite")
# Distinct users: 500, so that user u7 has the 20 sessions of a full indexed page already at
# 10,000 sessions (with 1,000 users it had 10 there and 20 at larger sizes, and the growth
# of the indexed page counted twice the work).
USERS = 500
TURN_POOL = 1_000  # distinct turns the fill cycles through (building 1M turns costs CPU)
INDEXED = ("user_id",)
PAGE_USER = {"user_id": "u7"}
RARE_TENANT = {"tenant": "t3"}  # one session in 10,000 (never indexed)
CONCURRENCY = {"redis": 64, "cluster": 64, "sqlite": 16}  # fills, exports and copies
SAMPLE = 1_000  # sessions per export or copy run (three runs, distinct sessions)
MIGRATE_SESSIONS = 2_000  # the CLI migrate's source
CONVERSATIONS = 400  # 20-turn conversations per variant of the memory comparison
EXPIRY_TTL = 1.0  # seconds: the purge phase's expiring sessions

# Timeouts (seconds) of the phases.
FILL_TIMEOUT = 3_600.0
CALL_TIMEOUT = 120.0
CALLS_BUDGET = 30.0  # a call kind stops repeating after this much (having run once)
RATE_TIMEOUT = 300.0
PURGE_TIMEOUT = 900.0
MIGRATE_TIMEOUT = 600.0
MEMORY_TIMEOUT = 600.0

# The databases of the standalone server (the cluster has only db 0).
DB_MAIN, DB_FLOOR, DB_COPY, DB_MIGRATE_SRC, DB_MIGRATE_DST, DB_MEMORY = range(6)

# Targets: growth from the smallest to the largest size, page vs floor, rates.
GROWTH_BOUND = 1.5
FLOOR_BOUND = 3.0
REDIS_RATE = 10_000.0
SQLITE_RATE = 5_000.0

_TURNS = [make_turn(n) for n in range(TURN_POOL)]


def session_id(n: int) -> str:
    return f"s{n:07d}"


def session_metadata(n: int) -> dict[str, str]:
    return {"user_id": f"u{n % USERS}", "tenant": "t3" if n % 10_000 == 3 else "t0"}


class PhaseTimeout(Exception):
    pass


async def bounded(work: Awaitable[Any], seconds: float, what: str) -> Any:
    try:
        return await asyncio.wait_for(work, seconds)
    except asyncio.TimeoutError:
        raise PhaseTimeout(f"{what}: no result within {seconds:.0f} s") from None


async def run_concurrently(jobs: Sequence[Callable[[], Awaitable[Any]]], width: int) -> list[Any]:
    """Every job, at most `width` at a time; results in order."""
    results: list[Any] = [None] * len(jobs)
    positions = iter(range(len(jobs)))

    async def worker() -> None:
        for i in positions:
            results[i] = await jobs[i]()

    await asyncio.gather(*(worker() for _ in range(min(width, len(jobs)))))
    return results


# -- results ----------------------------------------------------------------------------------


@dataclass
class Measure:
    """One measured quantity across sizes: values by size (None: n/a, with `why`)."""

    backend: str
    name: str
    unit: str  # "ms", "sessions/s", "B/session", ...
    values: dict[int, float | None] = field(default_factory=dict)
    samples: dict[int, list[float]] = field(default_factory=dict)
    why: dict[int, str] = field(default_factory=dict)

    def put(self, size: int, samples: list[float]) -> None:
        self.samples[size] = samples
        self.values[size] = statistics.median(samples)

    def missing(self, size: int, why: str) -> None:
        self.values[size] = None
        self.why[size] = why

    def growth(self) -> float | None:
        known = [(s, v) for s, v in sorted(self.values.items()) if v is not None]
        if len(known) < 2 or known[0][1] == 0:
            return None
        return known[-1][1] / known[0][1]


@dataclass
class ScaleReport:
    sizes: list[int]
    measures: dict[tuple[str, str], Measure] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def measure(self, backend: str, name: str, unit: str) -> Measure:
        key = (backend, name)
        if key not in self.measures:
            self.measures[key] = Measure(backend, name, unit)
        return self.measures[key]


def short(exc: BaseException, limit: int = 90) -> str:
    message = " ".join(str(exc).split())
    if len(message) > limit:
        message = message[: limit - 3] + "..."
    return f"{type(exc).__name__}: {message}"


# -- backends ---------------------------------------------------------------------------------


@dataclass
class Backend:
    name: str  # "redis", "cluster", "sqlite"
    label: str
    store: SessionStore
    #: None: `store` was opened with index_metadata=("user_id",); else why it could not be.
    not_indexed: str | None
    #: Bytes the backend holds (Redis: INFO used_memory, summed over nodes; SQLite: files).
    footprint: Callable[[], Awaitable[int]]
    size: int = 0  # sessions filled so far
    stopped: str | None = None  # why this backend stopped growing


def open_indexed(opener: Callable[..., SessionStore]) -> tuple[SessionStore, str | None]:
    """The store opened with `index_metadata`, or (before issue 13 lands) without it."""
    try:
        return opener(index_metadata=INDEXED), None
    except (TypeError, ConfigurationError) as exc:
        return opener(), short(exc, 70)


async def used_memory(clients: Sequence[aioredis.Redis]) -> int:
    return sum([int((await c.info("memory"))["used_memory"]) for c in clients])


def redis_footprint(nodes: Sequence[tuple[str, int]]) -> Callable[[], Awaitable[int]]:
    """used_memory summed over the nodes, after a SCAN of every key: the purge phase's
    expired keys are freed first (a key past its TTL is deleted when it is touched)."""

    async def measure() -> int:
        clients = [aioredis.Redis(host=h, port=p, db=DB_MAIN) for h, p in nodes]
        try:
            for client in clients:
                async for _ in client.scan_iter(count=5_000):
                    pass
            return await used_memory(clients)
        finally:
            for client in clients:
                await client.aclose()

    return measure


def file_footprint(path: Path) -> Callable[[], Awaitable[int]]:
    async def measure() -> int:
        names = (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
        return sum(p.stat().st_size for p in names if p.exists())

    return measure


# -- fill -------------------------------------------------------------------------------------


#: Sessions per batch of the export and copy rates (as the CLI's export and migrate).
COPY_BATCH = 128
#: Sessions per `replace_sessions` batch of the fill.
FILL_BATCH = 500
_ENCODED = [[encode_item(item) for item in turn] for turn in _TURNS]


async def fill(
    store: SessionStore,
    start: int,
    stop: int,
    width: int,
    label: str,
    *,
    ttl: float | None = None,
    id_of: Callable[[int], str] = session_id,
) -> float:
    """Sessions start..stop-1 through the stores' bulk write (`replace_sessions`, what
    import and migrate use: a round trip per batch on Redis, a transaction on SQLite),
    `width` batches at a time; returns the seconds it took."""
    batches = iter(range(start, stop, FILL_BATCH))
    done = 0
    started = time.perf_counter()
    step = max(1, (stop - start) // 5)
    next_log = step

    async def worker() -> None:
        nonlocal done, next_log
        for first in batches:
            writes = [
                SessionWrite(
                    session_id=id_of(n),
                    encoded=_ENCODED[n % TURN_POOL],
                    metadata=session_metadata(n),
                    ttl=ttl,
                )
                for n in range(first, min(first + FILL_BATCH, stop))
            ]
            await store.replace_sessions(writes)
            done += len(writes)
            if done >= next_log:
                next_log += step
                rate = done / (time.perf_counter() - started)
                log(f"    {label}: {done:,}/{stop - start:,} ({rate:,.0f} sessions/s)")

    await asyncio.gather(*(worker() for _ in range(max(1, width // 16))))
    return time.perf_counter() - started


# -- timed calls ------------------------------------------------------------------------------


async def time_calls(
    call: Callable[[], Awaitable[Any]], calls: int, check: Callable[[Any], str | None]
) -> tuple[list[float], str | None]:
    """Seconds of up to `calls` sequential calls (the first one warms up when it is quick),
    stopping early after CALLS_BUDGET; and what `check` found wrong with a result, if any."""
    samples: list[float] = []
    problem: str | None = None
    spent = 0.0
    warmed = False
    while len(samples) < calls and (not samples or spent < CALLS_BUDGET):
        started = time.perf_counter()
        result = await bounded(call(), CALL_TIMEOUT, "call")
        elapsed = time.perf_counter() - started
        spent += elapsed
        problem = problem or check(result)
        if not warmed and elapsed < 1.0:
            warmed = True  # the first call loaded scripts and opened connections
            continue
        warmed = True
        samples.append(elapsed)
    return samples, problem


def expect_page(length: int) -> Callable[[Any], str | None]:
    def check(page: Any) -> str | None:
        got = len(page.sessions)
        return None if got == length else f"page of {got}, expected {length}"

    return check


async def measure_calls(backend: Backend, size: int, calls: int, report: ScaleReport) -> None:
    store = backend.store
    users_matching = min(20, len(range(7, size, USERS)))  # user u7: sessions 7, 507, ...
    rare = min(20, len(range(3, size, 10_000)))  # tenant t3: sessions 3, 10003, ...
    kinds: list[tuple[str, Callable[[], Awaitable[Any]], Callable[[Any], str | None]]] = [
        ("page of 100", lambda: store.list_sessions(limit=100), expect_page(min(100, size))),
        (
            "count_sessions",
            store.count_sessions,
            lambda n: None if n == size else f"counted {n:,}, expected {size:,}",
        ),
        (
            "unindexed filter (tenant), one call",
            lambda: store.list_sessions(limit=20, metadata=RARE_TENANT),
            # A bounded scan on Redis: one call may return part of the matches.
            lambda page: None if len(page.sessions) <= rare else f"page of {len(page.sessions)}",
        ),
    ]
    indexed_call = (
        lambda: store.list_sessions(limit=20, metadata=PAGE_USER),
        expect_page(users_matching),
    )
    if backend.not_indexed is None:
        kinds.insert(1, ("indexed page of 20 (user_id)", *indexed_call))
    else:
        kinds.insert(1, ("user_id filter, no index", *indexed_call))
    for name, call, check in kinds:
        if name == "user_id filter, no index":  # the row of the target stays, as n/a
            report.measure(backend.name, "indexed page of 20 (user_id)", "ms").missing(size, "n/a")
        log(f"  {backend.label} {size:,}: {name} ...")
        measure = report.measure(backend.name, name, "ms")
        try:
            samples, problem = await time_calls(call, calls, check)
        except PhaseTimeout as exc:
            measure.missing(size, "timeout")
            report.notes.append(f"{backend.label} {size:,}: {name}: {exc}")
            continue
        measure.put(size, [s * 1000 for s in samples])
        if problem:
            report.notes.append(f"{backend.label} {size:,}: {name}: {problem}")


# -- the floor: one ZREVRANGE and 100 HGETALL, raw redis-py ----------------------------------

FLOOR_INDEX = "floor:index"


async def grow_floor(client: aioredis.Redis, start: int, stop: int) -> None:
    """A sorted set of `stop` members (score = a time) and one small hash per member."""
    for first in range(start, stop, 5_000):
        pipe = client.pipeline(transaction=False)
        members = {}
        for n in range(first, min(stop, first + 5_000)):
            sid = session_id(n)
            members[sid] = 1_700_000_000_000 + n
            pipe.hset(
                f"floor:{sid}",
                mapping={"created": n, "updated": n, "items": 4, **session_metadata(n)},
            )
        pipe.zadd(FLOOR_INDEX, members)
        await pipe.execute()


async def floor_call(client: aioredis.Redis) -> int:
    ids = await client.zrevrange(FLOOR_INDEX, 0, 99)
    pipe = client.pipeline(transaction=False)
    for sid in ids:
        pipe.hgetall(b"floor:" + sid)
    return len(await pipe.execute())


# -- rates: export, copy (records.py), migrate (the CLI) -------------------------------------


def samples_of(size: int, seed: int) -> list[list[str]]:
    """Three disjoint runs of SAMPLE session ids spread over the store."""
    count = min(size, 3 * SAMPLE)
    picked = random.Random(seed).sample(range(size), count)
    per_run = count // 3
    return [[session_id(n) for n in picked[r * per_run : (r + 1) * per_run]] for r in range(3)]


async def export_rate(store: SessionStore, runs: list[list[str]], width: int) -> list[float]:
    rates = []
    for ids in runs:
        started = time.perf_counter()
        chunks = [ids[i : i + COPY_BATCH] for i in range(0, len(ids), COPY_BATCH)]
        jobs = [lambda chunk=chunk: export_sessions(store, chunk) for chunk in chunks]
        batches = await bounded(run_concurrently(jobs, 4), RATE_TIMEOUT, "export")
        records = [record for batch in batches for record in batch]
        rates.append(len(ids) / (time.perf_counter() - started))
        if any(r is None for r in records):
            raise RuntimeError("export: a session of the store was not found")
    return rates


async def copy_rate(
    source: SessionStore, destination_url: str, runs: list[list[str]], width: int
) -> list[float]:
    """export_sessions + import_sessions (the batch paths of export, import and migrate),
    COPY_BATCH sessions a batch, four batches at a time, into an empty db."""
    rates = []
    admin = aioredis.Redis.from_url(destination_url)
    destination = RedisStore.from_url(destination_url)
    try:
        await destination.count_sessions()  # connections open, scripts loaded
        for ids in runs:
            await admin.flushdb()

            async def copy(chunk: list[str]) -> list[Any]:
                records = await export_sessions(source, chunk)
                if any(record is None for record in records):
                    raise RuntimeError("copy: a session of the store was not found")
                return await import_sessions(destination, [r for r in records if r])

            started = time.perf_counter()
            chunks = [ids[i : i + COPY_BATCH] for i in range(0, len(ids), COPY_BATCH)]
            jobs = [lambda chunk=chunk: copy(chunk) for chunk in chunks]
            results = await bounded(run_concurrently(jobs, 4), RATE_TIMEOUT, "copy")
            outcomes = [outcome for result in results for outcome in result]
            rates.append(len(ids) / (time.perf_counter() - started))
            if any(o != "created" for o in outcomes):
                raise RuntimeError(f"copy: outcomes {sorted(set(outcomes))}")
        await admin.flushdb()
    finally:
        await destination.close()
        await admin.aclose()
    return rates


def cli_migrate(source_url: str, destination_url: str) -> tuple[float, dict[str, Any]]:
    """`python -m turnstore --json migrate SRC DST` in a subprocess: (seconds, its JSON)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "turnstore", "--json", "migrate", source_url, destination_url],
        capture_output=True,
        timeout=MIGRATE_TIMEOUT,
        cwd=REPO,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"migrate exited {done.returncode}: {done.stderr.decode()[-300:]}")
    summary: dict[str, Any] = json.loads(done.stdout)
    return elapsed, summary


async def bench_cli_migrate(server: RedisServer, directory: Path, report: ScaleReport) -> None:
    """The CLI's migrate of MIGRATE_SESSIONS sessions, Redis to Redis and SQLite to Redis."""
    base = f"redis://{server.host}:{server.port}"
    dst_url = f"{base}/{DB_MIGRATE_DST}"
    sqlite_path = directory / "migrate-source.db"
    sources = {
        "redis": (RedisStore.from_url(f"{base}/{DB_MIGRATE_SRC}"), f"{base}/{DB_MIGRATE_SRC}"),
        "sqlite": (SQLiteStore(sqlite_path), f"sqlite:///{sqlite_path}"),
    }
    admin = aioredis.Redis.from_url(dst_url)
    try:
        for name, (store, url) in sources.items():
            label = "Redis to Redis" if name == "redis" else "SQLite to Redis"
            log(f"  CLI migrate {label}: filling {MIGRATE_SESSIONS:,} sessions ...")
            await bounded(
                fill(store, 0, MIGRATE_SESSIONS, CONCURRENCY[name], f"migrate source ({name})"),
                FILL_TIMEOUT,
                "migrate source fill",
            )
            await store.close()
            await admin.flushdb()
            log(f"  CLI migrate {label} ...")
            measure = report.measure("migrate", f"CLI migrate, {label}", "sessions/s")
            try:
                elapsed, summary = await asyncio.to_thread(cli_migrate, url, dst_url)
            except (subprocess.TimeoutExpired, RuntimeError) as exc:
                measure.missing(MIGRATE_SESSIONS, short(exc))
                report.notes.append(f"CLI migrate {label}: {short(exc, 300)}")
                continue
            measure.put(MIGRATE_SESSIONS, [MIGRATE_SESSIONS / elapsed])
            report.notes.append(
                f"CLI migrate {label}: {MIGRATE_SESSIONS:,} sessions in {elapsed:.1f} s "
                f"(a subprocess: start, plan, copy in batches, verify); created "
                f"{summary.get('created')}, verified {summary.get('verified')}"
            )
            await admin.flushdb()
    finally:
        for store, _ in sources.values():
            await store.close()
        await admin.aclose()


# -- memory of 20-turn conversations, ours vs the SDK ----------------------------------------


async def keys_memory(client: aioredis.Redis) -> int:
    """MEMORY USAGE (SAMPLES 0: every element) of every key of the client's db, summed."""
    total = 0
    async for key in client.scan_iter(count=1_000):
        total += await memory_usage(client, key)
    return total


async def bench_conversation_memory(server: RedisServer, report: ScaleReport) -> None:
    """Per-session memory of CONVERSATIONS 20-turn conversations written turn by turn (every
    key of a db that holds only them, the store's shared index keys included), and what is
    beyond the bytes of their items as stored."""
    url = f"redis://{server.host}:{server.port}/{DB_MEMORY}"
    admin = aioredis.Redis.from_url(url)
    conversation = [make_turn(10_000 + t) for t in range(20)]
    items_bytes = json_size([item for turn in conversation for item in turn])
    store, not_indexed = open_indexed(lambda **o: RedisStore.from_url(url, **o))
    plain = RedisStore.from_url(url)
    meta_label = "ours, user_id metadata" + (" (not indexed)" if not_indexed else " (indexed)")

    async def ours(sid: str, with_metadata: bool) -> None:
        session = (store if with_metadata else plain).session(sid)
        for turn in conversation:
            await session.add_items(turn)
        if with_metadata:
            await session.update_metadata({"user_id": f"u{int(sid.rsplit('-', 1)[1]) % 100}"})

    async def sdk(sid: str) -> None:
        session = SdkRedisSession(sid, redis_client=admin, key_prefix=SDK_PREFIX)
        for turn in conversation:
            await session.add_items(turn)  # type: ignore[arg-type]

    variants: dict[str, Callable[[str], Awaitable[None]]] = {
        "ours, no metadata": lambda sid: ours(sid, False),
        meta_label: lambda sid: ours(sid, True),
        "SDK RedisSession": sdk,
    }
    items_key = {
        "ours, no metadata": lambda sid: plain.session(sid).keys.items,
        meta_label: lambda sid: store.session(sid).keys.items,
        "SDK RedisSession": lambda sid: f"{SDK_PREFIX}:{sid}:messages",
    }
    per_session: dict[str, float] = {}
    stored: dict[str, float] = {}
    try:
        await admin.flushdb()
        await plain.count_sessions()  # scripts loaded, pools open before the first reading
        await store.count_sessions()
        for name, write in variants.items():
            log(f"  memory of {CONVERSATIONS} 20-turn conversations: {name} ...")
            jobs = [partial(write, f"mem-{n}") for n in range(CONVERSATIONS)]
            await bounded(run_concurrently(jobs, 32), MEMORY_TIMEOUT, "conversation memory")
            total = await bounded(keys_memory(admin), MEMORY_TIMEOUT, "MEMORY USAGE")
            per_session[name] = total / CONVERSATIONS
            values = [await admin.lrange(items_key[name](f"mem-{n}"), 0, -1) for n in range(20)]
            stored[name] = sum(len(v) for vs in values for v in vs) / len(values)
            await admin.flushdb()
    finally:
        await store.close()
        await plain.close()
        await admin.aclose()
    for name, value in per_session.items():
        report.measure("memory", f"{name}: per session", "B").put(20, [value])
        report.measure("memory", f"{name}: items as stored", "B").put(20, [stored[name]])
        report.measure("memory", f"{name}: beyond the items", "B").put(20, [value - stored[name]])
    sdk_over = per_session["SDK RedisSession"] - stored["SDK RedisSession"]
    for name in (meta_label, "ours, no metadata"):
        over = per_session[name] - stored[name]
        ratio = over / sdk_over if sdk_over > 0 else None
        report.targets.append(
            Target(f"memory beyond items, {name} / SDK", ratio, "<=", 1.25, unit="x")
        )
    report.notes.append(
        f"memory: {CONVERSATIONS} conversations of 20 turns (80 items, {items_bytes:,} bytes "
        f"of compact JSON each), written turn by turn; 'beyond the items' is MEMORY USAGE of "
        f"every key of their db per session minus the bytes of the item values each stores; "
        f"ours keeps the batch token of the writer's last add_items (each append forgets "
        f"the tokens of the earlier ones, answered on their only send) and its tokens set, "
        f"the SDK keeps a counter and a hash"
        + (f"; index_metadata not available ({not_indexed})" if not_indexed else "")
    )


# -- per size ---------------------------------------------------------------------------------


async def grow(backend: Backend, size: int, report: ScaleReport) -> bool:
    """Fill `backend` up to `size` sessions; False when it could not."""
    added = size - backend.size
    before = await backend.footprint()
    log(f"  {backend.label}: filling {backend.size:,} -> {size:,} ...")
    try:
        seconds = await bounded(
            fill(backend.store, backend.size, size, CONCURRENCY[backend.name], backend.label),
            FILL_TIMEOUT,
            "fill",
        )
    except PhaseTimeout as exc:
        backend.stopped = f"fill to {size:,}: {exc}"
        report.notes.append(f"{backend.label}: {backend.stopped}; it stops growing")
        return False
    backend.size = size
    report.measure(backend.name, "fill rate", "sessions/s").put(size, [added / seconds])
    report.measure(backend.name, "fill time", "s").put(size, [seconds])
    footprint = (await backend.footprint() - before) / added
    unit = "B/session (file)" if backend.name == "sqlite" else "B/session (used_memory)"
    report.measure(backend.name, "bytes per session", unit).put(size, [footprint])
    log(f"  {backend.label}: {added:,} sessions in {seconds:.1f} s")
    return True


async def measure_rates(
    backend: Backend, size: int, server: RedisServer | None, report: ScaleReport
) -> None:
    """Export rate, and (but from the cluster) the rate of copies into standalone Redis."""
    runs = samples_of(size, seed=size)
    width = CONCURRENCY[backend.name]
    phases: list[tuple[str, Callable[[], Awaitable[list[float]]]]] = [
        ("export rate", partial(export_rate, backend.store, runs, width))
    ]
    if server is not None and backend.name != "cluster":
        copy_url = f"redis://{server.host}:{server.port}/{DB_COPY}"
        phases.append(
            (
                "copy rate to Redis (records.py)",
                partial(copy_rate, backend.store, copy_url, runs, width),
            )
        )
    for name, work in phases:
        log(f"  {backend.label} {size:,}: {name} ...")
        measure = report.measure(backend.name, name, "sessions/s")
        try:
            measure.put(size, await work())
        except (PhaseTimeout, RuntimeError) as exc:
            measure.missing(size, "failed")
            report.notes.append(f"{backend.label} {size:,}: {name}: {short(exc, 200)}")


async def purge_phase(backend: Backend, size: int, report: ScaleReport) -> None:
    """As many sessions again with a 1 s TTL (other ids); once all expired, one timed
    purge_expired(): half of the index is expired then. The live sessions stay."""
    measure = report.measure(backend.name, "purge_expired, half expired", "ms")
    label = f"{backend.label} {size:,}: purge"
    log(f"  {label}: writing {size:,} sessions with a {EXPIRY_TTL:g} s TTL ...")
    try:
        await bounded(
            fill(
                backend.store,
                0,
                size,
                CONCURRENCY[backend.name],
                f"{label} fill",
                ttl=EXPIRY_TTL,
                id_of=lambda n: f"x{size}-{n:07d}",
            ),
            FILL_TIMEOUT,
            "expiring fill",
        )
        await asyncio.sleep(EXPIRY_TTL + 0.5)
        log(f"  {label}: purge_expired() ...")
        started = time.perf_counter()
        removed = await bounded(backend.store.purge_expired(), PURGE_TIMEOUT, "purge_expired")
        measure.put(size, [(time.perf_counter() - started) * 1000])
        if removed != size:
            # The fill's own writes clean up after sessions that expired while it ran.
            report.notes.append(
                f"{label}: purge_expired removed {removed:,} of the {size:,} expired sessions; "
                "the fill's own writes had cleaned up the others"
            )
    except PhaseTimeout as exc:
        measure.missing(size, "timeout")
        report.notes.append(f"{label}: {exc}")


async def measure_size(
    backends: list[Backend],
    size: int,
    floor: aioredis.Redis | None,
    server: RedisServer | None,
    calls: int,
    report: ScaleReport,
) -> None:
    for backend in backends:
        if backend.stopped or not await grow(backend, size, report):
            continue
        await measure_calls(backend, size, calls, report)
        await measure_rates(backend, size, server, report)
        await purge_phase(backend, size, report)
    if floor is not None:
        log(f"  floor {size:,}: growing the sorted set ...")
        await bounded(grow_floor(floor, int(await floor.zcard(FLOOR_INDEX)), size), 900, "floor")
        samples, _ = await time_calls(lambda: floor_call(floor), max(calls, 20), lambda r: None)
        report.measure("floor", "ZREVRANGE 0 99 + 100 HGETALL", "ms").put(
            size, [s * 1000 for s in samples]
        )


# -- targets and the printed table -----------------------------------------------------------


def add_targets(report: ScaleReport, backends: list[Backend]) -> None:
    small, large = report.sizes[0], report.sizes[-1]
    span = f"{small:,} -> {large:,}"
    for backend in backends:
        for name in ("page of 100", "indexed page of 20 (user_id)", "count_sessions"):
            measure = report.measures.get((backend.name, name))
            growth = measure.growth() if measure else None
            report.targets.append(
                Target(f"{backend.label}: {name} growth {span}", growth, "<=", GROWTH_BOUND)
            )
    floor = report.measures.get(("floor", "ZREVRANGE 0 99 + 100 HGETALL"))
    for backend in backends:
        if backend.name == "sqlite":
            continue
        for name in ("page of 100", "indexed page of 20 (user_id)"):
            measure = report.measures.get((backend.name, name))
            page = measure.values.get(large) if measure else None
            base = floor.values.get(large) if floor else None
            ratio = page / base if page is not None and base else None
            report.targets.append(
                Target(f"{backend.label}: {name} / floor at {large:,}", ratio, "<=", FLOOR_BOUND)
            )
    rate_targets = [
        ("redis", "export rate", REDIS_RATE, large),
        ("redis", "copy rate to Redis (records.py)", REDIS_RATE, large),
        ("sqlite", "copy rate to Redis (records.py)", SQLITE_RATE, large),
        ("migrate", "CLI migrate, Redis to Redis", REDIS_RATE, MIGRATE_SESSIONS),
        ("migrate", "CLI migrate, SQLite to Redis", SQLITE_RATE, MIGRATE_SESSIONS),
    ]
    for owner, name, bound, size in rate_targets:
        measure = report.measures.get((owner, name))
        if measure is None:
            continue
        value = measure.values.get(size)
        report.targets.append(Target(f"{owner}: {name}", value, ">=", bound, unit="/s"))


def _cell(measure: Measure, size: int) -> str:
    if size not in measure.values:
        return "-"
    value = measure.values[size]
    if value is None:
        return measure.why.get(size, "n/a")
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def print_scale(report: ScaleReport, labels: dict[str, str], elapsed: float) -> None:
    sizes = report.sizes
    print(f"Scale (median of the calls at each size; sizes {', '.join(f'{s:,}' for s in sizes)})")
    header = f"  {'backend':<10} {'measure':<38} {'unit':<24}" + "".join(f"{s:>14,}" for s in sizes)
    header += f"{'growth':>9}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    floor = report.measures.get(("floor", "ZREVRANGE 0 99 + 100 HGETALL"))
    for measure in report.measures.values():
        if measure.backend in ("migrate", "memory"):
            continue
        growth = measure.growth()
        growth_text = f"{growth:.2f}x" if growth is not None and measure.unit == "ms" else ""
        print(
            f"  {labels.get(measure.backend, measure.backend):<10} {measure.name:<38} "
            f"{measure.unit:<24}"
            + "".join(f"{_cell(measure, s):>14}" for s in sizes)
            + f"{growth_text:>9}"
        )
        if (
            floor is not None
            and measure.backend != "sqlite"
            and measure.name in ("page of 100", "indexed page of 20 (user_id)")
            and any(v is not None for v in measure.values.values())
        ):
            ratios = []
            for s in sizes:
                page, base = measure.values.get(s), floor.values.get(s)
                ratios.append(f"{page / base:.1f}x" if page is not None and base else "-")
            print(f"  {'':<10} {'  / floor':<38} {'x':<24}" + "".join(f"{r:>14}" for r in ratios))
    print()
    for owner in ("migrate", "memory"):
        for measure in (m for m in report.measures.values() if m.backend == owner):
            value = next(iter(measure.values.values()))
            text = "n/a" if value is None else f"{value:,.0f}"
            print(f"  {owner:<10} {measure.name:<62} {text:>12} {measure.unit}")
    print()
    print("Targets (issue 13, SPEC section 5)")
    for t in report.targets:
        measured = "-" if t.measured is None else f"{t.measured:,.3g}{t.unit}"
        status = {"met": "PASS", "MISSED": "MISS"}.get(t.status, "n/a")
        print(f"  {t.name:<62} {measured:>10}  {t.op} {t.bound:<7g} {status}")
    if report.notes:
        print()
        print("Notes")
        for note in report.notes:
            print(f"  - {note}")
    print()
    print(f"total run time {elapsed:.0f} s", flush=True)


# -- the run ----------------------------------------------------------------------------------


async def scale_main(
    sizes: list[int],
    wanted: Sequence[str],
    calls: int,
    server: RedisServer | None,
    cluster: ClusterTopology | None,
    directory: Path,
    report: ScaleReport,
) -> list[Backend]:
    """Grow every wanted backend through `sizes`; then (with standalone Redis) the CLI's
    migrate and the memory of 20-turn conversations. `server` also receives SQLite's copies."""
    backends: list[Backend] = []
    floor: aioredis.Redis | None = None
    if server is not None and "redis" in wanted:
        base = f"redis://{server.host}:{server.port}"
        store, why = open_indexed(lambda **o: RedisStore.from_url(f"{base}/{DB_MAIN}", **o))
        node = [(server.host, server.port)]
        backends.append(Backend("redis", "Redis", store, why, redis_footprint(node)))
        floor = aioredis.Redis.from_url(f"{base}/{DB_FLOOR}")
    if cluster is not None:
        cluster_url = cluster.url
        store, why = open_indexed(lambda **o: RedisStore.from_url(cluster_url, **o))
        nodes = [(n.host, n.port) for n in cluster.nodes]
        backends.append(Backend("cluster", "Cluster", store, why, redis_footprint(nodes)))
    if "sqlite" in wanted:
        path = directory / "scale.db"
        store, why = open_indexed(lambda **o: SQLiteStore(path, **o))
        backends.append(Backend("sqlite", "SQLite", store, why, file_footprint(path)))
    for backend in backends:
        if backend.not_indexed:
            report.notes.append(
                f"{backend.label}: index_metadata={INDEXED!r} refused ({backend.not_indexed}): "
                f"the indexed page is n/a; the same filter on the unindexed store is shown"
            )
    try:
        for size in sizes:
            log(f"scale: {size:,} sessions ...")
            await measure_size(backends, size, floor, server, calls, report)
        if server is not None and "redis" in wanted:
            await bench_cli_migrate(server, directory, report)
            await bench_conversation_memory(server, report)
    finally:
        for backend in backends:
            await backend.store.close()
        if floor is not None:
            await floor.aclose()
    return backends


def run_scale(
    sizes: Sequence[int], wanted: Sequence[str], calls: int, json_path: Path | None
) -> int:
    """Start the servers the wanted backends need, run, print the table, stop them."""
    started = time.perf_counter()
    report = ScaleReport(sorted(set(sizes)))
    server: RedisServer | None = None
    cluster: ClusterTopology | None = None
    backends: list[Backend] = []
    try:
        if "redis" in wanted or "sqlite" in wanted:  # SQLite's copies go to standalone Redis
            server = start_redis()
        if "cluster" in wanted:
            try:
                cluster = start_cluster(masters=3)
            except Exception as exc:
                report.notes.append(f"Cluster skipped: it did not start ({short(exc, 200)})")
        env = environment(asyncio.run(server_version(server)) if server else None)
        print_environment(env)
        with tempfile.TemporaryDirectory(prefix="turnstore-scale-") as directory:
            backends = asyncio.run(
                scale_main(report.sizes, wanted, calls, server, cluster, Path(directory), report)
            )
    finally:
        if cluster is not None:
            cluster.stop()
        if server is not None:
            server.stop()
    add_targets(report, backends)
    elapsed = time.perf_counter() - started
    print_scale(report, {b.name: b.label for b in backends}, elapsed)
    if json_path is not None:
        payload = {
            "sizes": report.sizes,
            "environment": env,
            "measures": [asdict(m) for m in report.measures.values()],
            "targets": [{**asdict(t), "status": t.status} for t in report.targets],
            "notes": report.notes,
            "seconds": elapsed,
        }
        json_path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


def parse_sizes(text: str) -> list[int]:
    sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive integers")
    return sizes


def parse_backends(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(BACKENDS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"backends are {', '.join(BACKENDS)}")
    return names
