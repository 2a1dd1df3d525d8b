"""Workload 1: Redis `add_items` of one turn, against the SDK and a raw RPUSH floor."""

from __future__ import annotations

import redis.asyncio as aioredis
from agents.extensions.memory import RedisSession as SdkRedisSession

from benchmarks.report import Report, interleaved, log, paired_ratios
from benchmarks.turns import (
    SDK_PREFIX,
    TTL_SECONDS,
    Op,
    Sizes,
    encode_item,
    json_size,
    make_turn,
)
from turnstore import RedisSession, RedisStore

# -- workload 1: Redis add_items of a 4-item turn ---------------------------------------------


async def bench_redis_add(
    client: aioredis.Redis, store: RedisStore, sizes: Sizes, report: Report
) -> None:
    """Ours as users open it (a session of a default `RedisStore`, which sends on its own
    direct lane), and ours over an injected client (redis-py's command path, as the SDK and
    the floor use), next to the SDK's session and the floor on that same injected client."""
    turns = [make_turn(n) for n in range(sizes.turns_per_round)]
    indexed = RedisStore(client, index_metadata=("user_id",))
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

        async def ours_indexed(r: int, ttl: int | None = ttl, tag: str = tag) -> Op:
            # A session with an indexed metadata value: each append also moves its entry in
            # the value's index.
            session = indexed.session(f"w1-indexed-{tag}-{r}", ttl=ttl)
            await session.update_metadata({"user_id": f"u{r}"})
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
                    return await client.rpush(key, *[encode_item(item) for item in turns[i]])

                return push
            ttl_ms = ttl * 1000

            async def push_expire(i: int) -> object:
                pipe = client.pipeline(transaction=False)
                pipe.rpush(key, *[encode_item(item) for item in turns[i]])
                pipe.pexpire(key, ttl_ms)
                return await pipe.execute()

            return push_expire

        label = "1. add_items turn" + (f" ttl={ttl}s" if ttl else "")
        log(f"{label} ...")
        rates = await interleaved(
            {
                "ours": ours,
                "injected": ours_injected,
                "indexed": ours_indexed,
                "sdk": sdk,
                "floor": floor,
            },
            sizes.rounds,
            sizes.turns_per_round,
        )
        report.add(label, "ours (default store)", rates["ours"], "turns/s")
        report.add(label, "ours (injected client)", rates["injected"], "turns/s")
        report.add(label, "ours (injected, indexed user_id)", rates["indexed"], "turns/s")
        report.add(label, "SDK", rates["sdk"], "turns/s")
        report.add(label, "raw floor", rates["floor"], "turns/s")
        suffix = " (TTL)" if ttl else ""
        ours_vs_sdk = paired_ratios(rates["ours"], rates["sdk"])
        report.target(f"add_items ours/SDK{suffix}", ours_vs_sdk, ">=", 4.0)
        report.target(
            f"add_items ours/floor{suffix}", paired_ratios(rates["ours"], rates["floor"]), ">=", 0.8
        )
        # SPEC section 5: the same ratios over an injected client (its own connections and
        # redis-py's own packing, as the SDK's session and the floor use).
        report.target(
            f"add_items injected client/SDK{suffix}",
            paired_ratios(rates["injected"], rates["sdk"]),
            ">=",
            4.0,
        )
        report.target(
            f"add_items injected client/floor{suffix}",
            paired_ratios(rates["injected"], rates["floor"]),
            ">=",
            0.8,
        )
