"""Blocking I/O has one mechanism: the worker thread of each SQLite connection (redis-py's
sockets are asyncio's). No module of the package hands work to another thread."""

from __future__ import annotations

import ast
from pathlib import Path

import turnstore

SRC = Path(turnstore.__file__).parent

#: What would run blocking work on a thread of the loop's default executor.
OTHER_THREADS = {"to_thread", "run_in_executor"}


def test_no_module_runs_blocking_work_on_an_executor_thread() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{node.lineno}: {node.attr}"
        for path in sorted(SRC.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute) and node.attr in OTHER_THREADS
    ]
    assert offenders == []
