"""Several processes on one database file: nothing lost, nothing interleaved, nothing twice."""

from __future__ import annotations

from tests.sqlite.sqlite_process import SESSION_ID, append, pop, run_together
from turnstore.sqlite import SQLiteSession

PROCESSES = 4


async def test_concurrent_processes_append_every_batch_once_and_contiguous(db_file: str) -> None:
    batches, size = 50, 3
    run_together(append, *((db_file, f"p{n}", batches, size) for n in range(PROCESSES)))

    async with SQLiteSession(SESSION_ID, db_file) as session:
        items = [item["content"] for item in await session.get_items()]
    assert len(items) == PROCESSES * batches * size
    seen_batches = []
    for start in range(0, len(items), size):
        batch = [content.rsplit(":", 1) for content in items[start : start + size]]
        assert len({prefix for prefix, _ in batch}) == 1, f"interleaved at {start}: {batch}"
        assert [index for _, index in batch] == [str(i) for i in range(size)]
        seen_batches.append(batch[0][0])
    expected = {f"p{n}:{b}" for n in range(PROCESSES) for b in range(batches)}
    assert sorted(seen_batches) == sorted(expected)


async def test_concurrent_processes_never_pop_the_same_item(db_file: str) -> None:
    total = 400
    async with SQLiteSession(SESSION_ID, db_file) as session:
        await session.add_items([{"role": "user", "content": f"m{i}"} for i in range(total)])

    outcomes = run_together(pop, *((db_file, f"p{n}") for n in range(PROCESSES)))

    popped = [content for contents in outcomes.values() for content in contents]
    assert len(popped) == total
    assert set(popped) == {f"m{i}" for i in range(total)}
    busy = [contents for contents in outcomes.values() if contents]
    assert len(busy) >= 2, "only one process popped anything: the test did not contend"
