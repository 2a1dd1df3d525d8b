"""Batches of sessions worked on concurrently, their results taken in order.

`export`, `import` and `migrate` cut their sessions into batches (each batch one request per
store step: the store reads or writes all its sessions in one round trip where the backend
can) and keep a few batches in flight, so that one batch's round trips overlap another's
encoding and decoding. Results come back in the batches' order, which keeps an export file
in order and a progress count that means "everything before this is done".
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

__all__ = ["BATCH", "IN_FLIGHT", "batch_size", "in_batches", "run_batches"]

T = TypeVar("T")
B = TypeVar("B")
R = TypeVar("R")

#: Sessions per batch...
BATCH = 128
#: ...and batches in flight at once (so at most BATCH * IN_FLIGHT sessions).
IN_FLIGHT = 4


def batch_size(total: int) -> int:
    """`BATCH`, or less for a small job: a few batches per slot in flight, so that the
    progress bar moves (a handful of sessions goes one at a time, as they complete)."""
    return max(1, min(BATCH, total // (IN_FLIGHT * 4)))


def in_batches(items: Sequence[T], size: int | None = None) -> list[Sequence[T]]:
    """`items` cut into consecutive batches of `size` (default `batch_size(len(items))`)."""
    size = size or batch_size(len(items))
    return [items[start : start + size] for start in range(0, len(items), size)]


def _never() -> bool:
    return False


async def run_batches(
    batches: Iterable[B],
    work: Callable[[B], Awaitable[R]],
    *,
    in_flight: int = IN_FLIGHT,
    stop: Callable[[], bool] = _never,
) -> AsyncGenerator[tuple[B, R], None]:
    """Yield `(batch, await work(batch))` in the batches' order, `in_flight` running at once.

    No batch starts once `stop()` is true; those already started finish and are yielded. A
    failing batch is raised in its turn, after every started batch has finished (none is
    cancelled midway, which could leave a connection in an unknown state).
    """
    pending: deque[tuple[B, asyncio.Future[R]]] = deque()
    source = iter(batches)
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) < in_flight and not stop():
                try:
                    batch = next(source)
                except StopIteration:
                    exhausted = True
                    break
                pending.append((batch, asyncio.ensure_future(work(batch))))
            if not pending:
                return
            batch, running = pending.popleft()
            try:
                result = await running
            except BaseException:
                await _settle(pending)
                raise
            yield batch, result
    finally:
        await _settle(pending)


async def _settle(pending: deque[tuple[B, asyncio.Future[R]]]) -> None:
    """Wait for every started batch to end, whatever its outcome."""
    futures = [future for _, future in pending]
    pending.clear()
    if futures:
        await asyncio.wait(futures)
        for future in futures:
            if not future.cancelled():
                future.exception()  # retrieved: no "exception was never retrieved" report
