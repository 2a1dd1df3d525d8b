"""Several processes on one database file: nothing lost, nothing interleaved, nothing twice."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from agent_sessions.sqlite import SQLiteSession

SCRIPT = str(Path(__file__).with_name("sqlite_process.py"))
PROCESSES = 4


def run_together(tmp_path: Path, *args_per_process: list[str]) -> list[str]:
    """Start the child processes, let them go at once, return their stdout."""
    children = [
        subprocess.Popen(
            [sys.executable, SCRIPT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for args in args_per_process
    ]
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("ready-*"))) < len(children):
            assert time.monotonic() < deadline, "children did not start"
            assert all(child.poll() is None for child in children), "a child died early"
            time.sleep(0.01)
        (tmp_path / "go").touch()
        outputs = []
        for child in children:
            out, err = child.communicate(timeout=60)
            assert child.returncode == 0, err.decode()
            outputs.append(out.decode())
        return outputs
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()


async def test_concurrent_processes_append_every_batch_once_and_contiguous(
    tmp_path: Path, db_file: str
) -> None:
    batches, size = 50, 3
    run_together(
        tmp_path,
        *(
            ["append", db_file, f"p{n}", str(tmp_path), str(batches), str(size)]
            for n in range(PROCESSES)
        ),
    )

    async with SQLiteSession("shared", db_file) as session:
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


async def test_concurrent_processes_never_pop_the_same_item(tmp_path: Path, db_file: str) -> None:
    total = 400
    async with SQLiteSession("shared", db_file) as session:
        await session.add_items([{"role": "user", "content": f"m{i}"} for i in range(total)])

    outputs = run_together(
        tmp_path, *(["pop", db_file, f"p{n}", str(tmp_path)] for n in range(PROCESSES))
    )

    popped = [content for out in outputs for content in json.loads(out)]
    assert len(popped) == total
    assert set(popped) == {f"m{i}" for i in range(total)}
    busy = [out for out in outputs if json.loads(out)]
    assert len(busy) >= 2, "only one process popped anything: the test did not contend"
