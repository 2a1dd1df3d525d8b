"""The conversations every workload writes: realistic SDK turns, and the sizes of a run."""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

    def encode_item(item: Item) -> bytes:
        return bytes(orjson.dumps(item))

except ImportError:  # the no-fast child process hides orjson

    def encode_item(item: Item) -> bytes:
        return json.dumps(item, separators=(",", ":")).encode()
