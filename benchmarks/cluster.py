"""Workload 7: Redis Cluster, which the SDK cannot write to."""

from __future__ import annotations

import asyncio
import statistics
import time

import redis.asyncio as aioredis
from agents.extensions.memory import RedisSession as SdkRedisSession
from redis.asyncio.cluster import ClusterNode, RedisCluster
from tests.servers import ClusterTopology, RedisServer, start_cluster

from benchmarks.concurrency import concurrent_conversations, report_load_errors
from benchmarks.report import Report, interleaved, log, paired_ratios
from benchmarks.turns import (
    SDK_PREFIX,
    Op,
    Setup,
    Sizes,
    make_turn,
)
from turnstore import RedisStore

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


def run_cluster(server: RedisServer, sizes: Sizes, report: Report) -> None:
    """Workload 7: start a 3-master cluster (the test suite's `start_cluster`), measure, stop
    it. A cluster that does not start is reported, not raised."""
    log("7. Cluster: starting 3 masters ...")
    started = time.perf_counter()
    try:
        cluster: ClusterTopology = start_cluster(masters=3)
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
