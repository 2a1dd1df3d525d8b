"""What the child processes of the multi-process tests run (imported by them, not collected).

Children come from a `forkserver` that imported turnstore once, so each starts in
milliseconds instead of importing the SDK again. Each child opens its own connection to the
file, waits at a barrier so that all of them contend from the first write, and puts its
outcome on a queue: `(name, result)` or `(name, "error: ...")`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import traceback
from collections.abc import Callable
from multiprocessing.context import ForkServerContext
from typing import Any

from turnstore.sqlite import SQLiteSession, SQLiteStore

SESSION_ID = "shared"


def context() -> ForkServerContext:
    ctx = multiprocessing.get_context("forkserver")
    assert isinstance(ctx, ForkServerContext)
    ctx.set_forkserver_preload(["turnstore.sqlite", __name__])
    return ctx


async def append(db: str, name: str, batches: int, size: int) -> None:
    """Append `batches` batches of `size` items named `<name>:<batch>:<index>`."""
    session = SQLiteSession(SESSION_ID, db)
    for batch in range(batches):
        await session.add_items(
            [{"role": "user", "content": f"{name}:{batch}:{i}"} for i in range(size)]
        )
    await session.close()


async def pop(db: str, name: str) -> list[str]:
    """Pop until the session is empty; the contents popped, in order."""
    session = SQLiteSession(SESSION_ID, db)
    popped: list[str] = []
    while (item := await session.pop_item()) is not None:
        popped.append(item["content"])
    await session.close()
    return popped


def child(work: Callable[..., Any], args: tuple[Any, ...], barrier: Any, results: Any) -> None:
    name = args[1]
    try:
        barrier.wait(timeout=60)
        results.put((name, asyncio.run(work(*args))))
    except BaseException:
        results.put((name, "error: " + traceback.format_exc()))


def run_together(work: Callable[..., Any], *args_per_child: tuple[Any, ...]) -> dict[str, Any]:
    """Run `work(*args)` in one child process per args tuple, all released at once."""
    ctx = context()
    barrier = ctx.Barrier(len(args_per_child))
    results = ctx.Queue()
    children = [
        ctx.Process(target=child, args=(work, args, barrier, results)) for args in args_per_child
    ]
    for process in children:
        process.start()
    try:
        outcomes = dict(results.get(timeout=60) for _ in children)
    finally:
        for process in children:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    errors = [f"{name}: {out}" for name, out in outcomes.items() if str(out).startswith("error")]
    assert not errors, "\n".join(errors)
    assert all(process.exitcode == 0 for process in children)
    return outcomes


async def count_up(db: str, name: str, cycles: int) -> int:
    """Under the session's lock, `cycles` times: read the last number, append the next one.

    Returns how many cycles ran. Each child opens a store of its own (its own connection).
    """
    async with SQLiteStore(db) as store:
        session = store.session(SESSION_ID)
        for _ in range(cycles):
            async with session.lock(timeout=60):
                last = await session.get_items(limit=1)
                value = int(last[0]["content"]) if last else 0
                await asyncio.sleep(0.002)  # the work between reading and writing
                await session.add_items([{"role": "user", "content": str(value + 1)}])
    return cycles
