"""Numbered batches for topology-change tests: what was written, and what the store kept.

Batch `n` is `BATCH_SIZE` user items whose contents are "n:0", "n:1", ...; reading a history
back tells which batches it holds, in which order, and whether any was split or repeated.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

BATCH_SIZE = 3


def batch(n: int) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"{n}:{j}"} for j in range(BATCH_SIZE)]


def batch_key(n: int) -> str:
    """The idempotency key a caller uses for batch `n`, on every attempt."""
    return f"batch-{n}"


def stored_batches(items: list[Any]) -> list[int]:
    """The batch numbers of a history, in stored order.

    Fails unless every batch is whole and contiguous (its items adjacent and in order).
    """
    contents = [item["content"] for item in items]
    assert len(contents) % BATCH_SIZE == 0, f"a partial batch is stored: {contents}"
    numbers: list[int] = []
    for start in range(0, len(contents), BATCH_SIZE):
        n = int(contents[start].split(":")[0])
        expected = [item["content"] for item in batch(n)]
        assert contents[start : start + BATCH_SIZE] == expected, (
            f"batch {n} is split or interleaved: {contents[start : start + BATCH_SIZE]}"
        )
        numbers.append(n)
    return numbers


def applied_twice(numbers: list[int]) -> list[int]:
    return sorted(n for n, seen in Counter(numbers).items() if seen > 1)
