"""Workload 4: Redis memory per stored item against its JSON size."""

from __future__ import annotations

import redis.asyncio as aioredis
from agents.extensions.memory import RedisSession as SdkRedisSession

from benchmarks.report import Report, log
from benchmarks.turns import (
    SDK_PREFIX,
    Sizes,
    make_turn,
)
from turnstore import RedisSession

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
