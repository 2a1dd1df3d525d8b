"""A child process of the multi-process tests (run as a script, not collected).

    python sqlite_process.py append DB NAME WORKDIR BATCHES SIZE
    python sqlite_process.py pop DB NAME WORKDIR

Both modes first touch WORKDIR/ready-NAME and wait for WORKDIR/go, so that every child is
running before any of them starts: the writes really contend. `pop` prints the popped
contents as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from agent_sessions.sqlite import SQLiteSession

SESSION_ID = "shared"


def wait_for_start(workdir: Path, name: str) -> None:
    (workdir / f"ready-{name}").touch()
    deadline = time.monotonic() + 60
    while not (workdir / "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit("never told to go")
        time.sleep(0.002)


async def append(db: str, name: str, batches: int, size: int) -> None:
    session = SQLiteSession(SESSION_ID, db)
    for batch in range(batches):
        await session.add_items(
            [{"role": "user", "content": f"{name}:{batch}:{i}"} for i in range(size)]
        )
    await session.close()


async def pop(db: str) -> list[str]:
    session = SQLiteSession(SESSION_ID, db)
    popped: list[str] = []
    while (item := await session.pop_item()) is not None:
        popped.append(item["content"])
    await session.close()
    return popped


def main(argv: list[str]) -> None:
    mode, db, name, workdir = argv[:4]
    wait_for_start(Path(workdir), name)
    if mode == "append":
        asyncio.run(append(db, name, int(argv[4]), int(argv[5])))
    else:
        print(json.dumps(asyncio.run(pop(db))))


if __name__ == "__main__":
    main(sys.argv[1:])
