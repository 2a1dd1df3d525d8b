"""Workload 5: SQLite `add_items` and `get_items(limit=20)` against the SDK's SQLiteSession."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from agents import SQLiteSession as SdkSQLiteSession

from benchmarks.report import Report, interleaved, log, paired_ratios
from benchmarks.turns import (
    Op,
    Sizes,
    make_items,
    make_turn,
)

# -- workload 5: SQLite ----------------------------------------------------------------------


async def bench_sqlite(sizes: Sizes, report: Report) -> None:
    try:
        from turnstore.sqlite import SQLiteSession
    except ImportError as exc:
        log(f"5. SQLite skipped: {exc}")
        report.notes.append(f"workload 5 skipped: turnstore.sqlite not importable ({exc})")
        report.target("SQLite add_items ours/SDK", None, ">=", 1.5)
        report.target("SQLite get_items(limit=20) ours/SDK", None, ">=", 1.0)
        return

    turns = [make_turn(n) for n in range(sizes.sqlite_turns_per_round)]
    with tempfile.TemporaryDirectory(prefix="turnstore-bench-") as tmp:
        ours_db, sdk_db = Path(tmp, "ours.db"), Path(tmp, "sdk.db")
        opened: list[Any] = []

        def ours_session(session_id: str) -> SQLiteSession:
            session = SQLiteSession(session_id, ours_db)
            opened.append(session)
            return session

        def sdk_session(session_id: str) -> SdkSQLiteSession:
            session = SdkSQLiteSession(session_id, sdk_db)
            opened.append(session)
            return session

        try:

            async def ours_add(r: int) -> Op:
                session = ours_session(f"w5-{r}")
                return lambda i: session.add_items(turns[i])

            async def sdk_add(r: int) -> Op:
                session = sdk_session(f"w5-{r}")
                return lambda i: session.add_items(turns[i])  # type: ignore[arg-type]

            label = "5. SQLite add_items turn"
            log(f"{label} ...")
            rates = await interleaved(
                {"ours": ours_add, "sdk": sdk_add}, sizes.rounds, sizes.sqlite_turns_per_round
            )
            report.add(label, "ours", rates["ours"], "turns/s")
            report.add(label, "SDK", rates["sdk"], "turns/s")
            ratio = paired_ratios(rates["ours"], rates["sdk"])
            report.target("SQLite add_items ours/SDK", ratio, ">=", 1.5)

            items = make_items(sizes.history_items)
            ours_long, sdk_long = ours_session("w5-long"), sdk_session("w5-long")
            for start in range(0, len(items), 500):
                await ours_long.add_items(items[start : start + 500])
                await sdk_long.add_items(items[start : start + 500])  # type: ignore[arg-type]

            async def ours_read(_r: int) -> Op:
                return lambda _i: ours_long.get_items(limit=20)

            async def sdk_read(_r: int) -> Op:
                return lambda _i: sdk_long.get_items(limit=20)

            label = f"5. SQLite get_items(limit=20) of {sizes.history_items:,}"
            log(f"{label} ...")
            rates = await interleaved(
                {"ours": ours_read, "sdk": sdk_read}, sizes.rounds, sizes.limit_reads_per_round
            )
            report.add(label, "ours", rates["ours"], "reads/s")
            report.add(label, "SDK", rates["sdk"], "reads/s")
            ratio = paired_ratios(rates["ours"], rates["sdk"])
            report.target("SQLite get_items(limit=20) ours/SDK", ratio, ">=", 1.0)
        except Exception as exc:  # the backend is written in parallel: report, don't crash
            log(f"5. SQLite failed: {exc!r}")
            report.notes.append(f"workload 5 failed: {exc!r}")
        finally:
            for session in opened:
                closing = session.close()
                if closing is not None:
                    await closing
