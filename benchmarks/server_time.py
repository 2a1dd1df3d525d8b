"""Server time per append (SPEC section 5): what Redis itself spends on one `add_items`.

Usage (from the repository's root, as every benchmark module)::

    python -m benchmarks.server_time [--appends N]

One `redis-server` started here on a free loopback port. For each variant, the server's
command statistics are reset, N four-item turns are appended, and `INFO commandstats` gives
the microseconds the server spent:

- ours: the append script's `evalsha` time per call (it includes every command the script
  runs), through a store opened by URL and through an injected client;
- the SDK's `RedisSession`: the sum over every command it sends (a transaction's `exec` is
  left out: its time includes the commands queued in it, counted already);
- the floor: one `RPUSH` per turn (and `PEXPIRE` with a TTL).

The server time is measured by the server, so the noise of a shared machine barely touches
it; each variant still runs three times and the median is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from agents.extensions.memory import RedisSession as SdkRedisSession
from tests.servers import start_redis

from turnstore import RedisSession, RedisStore

TTL_SECONDS = 3600


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


async def server_usec(
    admin: aioredis.Redis, appends: int, append: Callable[[int], Awaitable[object]]
) -> dict[str, tuple[int, float]]:
    """Reset the stats, make `appends` appends, return {command: (calls, usec)}."""
    await append(-1)  # the first append creates the session: not the common case
    await admin.config_resetstat()
    for n in range(appends):
        await append(n)
    stats = await admin.info("commandstats")
    found: dict[str, tuple[int, float]] = {}
    for name, value in stats.items():
        command = name.removeprefix("cmdstat_")
        if command in ("config|resetstat", "info", "config"):
            continue
        found[command] = (int(value["calls"]), float(value["usec"]))
    return found


def per_append(stats: dict[str, tuple[int, float]], appends: int, kind: str) -> float:
    if kind == "ours":
        return stats.get("evalsha", (0, 0.0))[1] / appends
    return sum(usec for cmd, (_, usec) in stats.items() if cmd != "exec") / appends


async def main(appends: int) -> int:
    server = start_redis()
    try:
        admin = aioredis.Redis.from_url(server.url)
        injected = aioredis.Redis.from_url(server.url)
        store = RedisStore.from_url(server.url, key_prefix="st")
        turns = [make_turn(n) for n in range(appends)]
        first = make_turn(10**6)
        encoded = [[json.dumps(item).encode() for item in turn] for turn in turns]
        rows: list[tuple[str, str, float, str]] = []
        for ttl in (None, TTL_SECONDS):
            label = "with TTL" if ttl else "no TTL"
            results: dict[str, list[float]] = {}
            for run in range(3):
                tag = f"{label}-{run}"
                ours = store.session(f"ours-{tag}", ttl=ttl)
                mine = RedisSession(f"inj-{tag}", client=injected, key_prefix="st", ttl=ttl)
                sdk = SdkRedisSession(
                    f"sdk-{tag}", redis_client=injected, key_prefix="agents:session", ttl=ttl
                )
                floor_key = f"floor:{tag}"

                def via(session: Any) -> Callable[[int], Awaitable[object]]:
                    return lambda n: session.add_items(first if n < 0 else turns[n])

                async def floor(n: int, ttl: int | None = ttl, key: str = floor_key) -> object:
                    values = encoded[max(n, 0)]
                    if ttl is None:
                        return await injected.rpush(key, *values)
                    pipe = injected.pipeline(transaction=False)
                    pipe.rpush(key, *values)
                    pipe.pexpire(key, ttl * 1000)
                    return await pipe.execute()

                variants: list[tuple[str, str, Callable[[int], Awaitable[object]]]] = [
                    ("ours (store by URL)", "ours", via(ours)),
                    ("ours (injected client)", "ours", via(mine)),
                    ("SDK RedisSession", "sdk", via(sdk)),
                    ("floor (RPUSH" + (" + PEXPIRE)" if ttl else ")"), "floor", floor),
                ]
                for name, kind, append in variants:
                    stats = await server_usec(admin, appends, append)
                    results.setdefault(name, []).append(per_append(stats, appends, kind))
                    if run == 0:
                        print(
                            f"  {label:8s} {name:24s} "
                            + ", ".join(f"{c} {calls}" for c, (calls, _) in sorted(stats.items()))
                        )
            for name, values in results.items():
                rows.append((label, name, statistics.median(values), "usec/append"))
        print()
        print(f"Server time per append ({appends} appends a run, median of 3 runs)")
        for label, name, value, unit in rows:
            print(f"  {label:8s} {name:24s} {value:7.1f} {unit}")
        for label in ("no TTL", "with TTL"):
            ours_us = next(v for lb, n, v, _ in rows if lb == label and n.startswith("ours (store"))
            sdk_us = next(v for lb, n, v, _ in rows if lb == label and n.startswith("SDK"))
            verdict = "met" if ours_us <= sdk_us else "MISSED"
            print(f"  target {label}: ours {ours_us:.1f} <= SDK {sdk_us:.1f} usec: {verdict}")
        await store.close()
        await injected.aclose()
        await admin.aclose()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appends", type=int, default=2000)
    sys.exit(asyncio.run(main(parser.parse_args().appends)))
