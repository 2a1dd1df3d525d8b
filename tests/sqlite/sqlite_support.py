"""Helpers shared by the SQLite backend tests."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def contents(items: list[Any]) -> list[str]:
    return [item["content"] for item in items]


def raw_rows(db_file: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows read with a plain sqlite3 connection: what is really in the file."""
    conn = sqlite3.connect(db_file)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def worker_threads(db_file: str) -> list[threading.Thread]:
    """Live worker threads serving `db_file`."""
    return [t for t in threading.enumerate() if t.name.endswith(":" + db_file)]
