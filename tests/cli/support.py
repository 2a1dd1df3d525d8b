"""Running the real `turnstore` command in a subprocess, and putting sessions in place."""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from turnstore import SessionRecord, export_session, open_store

CLI = [sys.executable, "-m", "turnstore"]
#: The console script the package installs, as a user runs it (beside this interpreter).
CONSOLE_SCRIPT = Path(sys.executable).with_name("turnstore")
#: Seconds any one command may take (the demo runs two interpreters).
TIMEOUT = 90.0

CONVERSATION: list[dict[str, Any]] = [
    {"role": "user", "content": "What's the weather in Paris?"},
    {
        "type": "function_call",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
    },
    {"type": "function_call_output", "call_id": "call_1", "output": "22 °C and sunny"},
    {
        "type": "message",
        "role": "assistant",
        "id": "msg_1",
        "status": "completed",
        "content": [{"type": "output_text", "text": "It's 22 °C and sunny.", "annotations": []}],
    },
    {"role": "user", "content": "Thanks!"},
    {
        "type": "message",
        "role": "assistant",
        "id": "msg_2",
        "status": "completed",
        "content": [{"type": "output_text", "text": "You're welcome.", "annotations": []}],
    },
]


def sqlite_url_for(path: Path) -> str:
    """A URL for a database file (an absolute path)."""
    return f"sqlite:///{path}"  # an absolute path: sqlite:////tmp/...


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI run: no inherited store URL, no colour settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("TURNSTORE_URL", "NO_COLOR")}
    env.update(extra or {})
    return env


def run_cli(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m turnstore ARGS` and capture what it prints (`input` on stdin)."""
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env=cli_env(env),
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
    )


def run_console_script(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run the installed `turnstore` console script with ARGS and capture what it prints."""
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *args],
        cwd=cwd,
        env=cli_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
    )


def run_cli_together(
    runs: Mapping[str, Sequence[str]],
    *,
    cwd: Path,
    env: Mapping[str, Mapping[str, str]] | None = None,
    timeout: float = TIMEOUT,
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run independent CLI commands at the same time (startup dominates each run)."""
    started = {
        name: subprocess.Popen(
            [*CLI, *args],
            cwd=cwd,
            env=cli_env((env or {}).get(name)),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        for name, args in runs.items()
    }
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    try:
        for name, process in started.items():
            stdout, stderr = process.communicate(timeout=timeout)
            results[name] = subprocess.CompletedProcess(
                process.args, process.returncode, stdout, stderr
            )
    finally:
        for process in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


def run_cli_on_tty(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = TIMEOUT
) -> str:
    """Run the CLI with its stdout on a pseudo-terminal; returns what it wrote there."""
    import pty  # POSIX only, like the rest of the suite's servers

    master, slave = pty.openpty()
    process = subprocess.Popen(
        [*CLI, *args],
        cwd=cwd,
        env=cli_env({"COLUMNS": "120", **(env or {})}),
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.DEVNULL,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        assert process.wait(timeout=max(0.1, deadline - time.monotonic())) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    return b"".join(chunks).decode()


def seed(
    url: str,
    sessions: Sequence[tuple[str, list[dict[str, Any]], dict[str, str]]],
    **options: Any,
) -> None:
    """Write sessions through the library, oldest first (each one updated after the last)."""

    async def write() -> None:
        async with open_store(url, **options) as store:
            for session_id, items, metadata in sessions:
                session = store.session(session_id)
                await session.add_items(items)
                if metadata:
                    await session.update_metadata(metadata)
                await asyncio.sleep(0.005)  # distinct update times, so the order is defined

    asyncio.run(write())


def stored_items(url: str, session_id: str) -> list[Any]:
    async def read() -> list[Any]:
        async with open_store(url) as store:
            return await store.session(session_id).get_items()

    return asyncio.run(read())


def stored_records(url: str) -> dict[str, SessionRecord]:
    """Every session of the store at `url`, read whole, by id (newest first)."""

    async def read() -> dict[str, SessionRecord]:
        async with open_store(url) as store:
            records: dict[str, SessionRecord] = {}
            cursor: str | None = None
            while True:
                page = await store.list_sessions(limit=100, cursor=cursor)
                for info in page.sessions:
                    record = await export_session(store, info.session_id)
                    assert record is not None
                    records[info.session_id] = record
                cursor = page.next_cursor
                if cursor is None:
                    return records

    return asyncio.run(read())


def table_ids(stdout: str, known: Sequence[str]) -> list[str]:
    """The known session ids in the order the `list` table shows them."""
    firsts = [line.split()[0] for line in stdout.splitlines() if line.strip()]
    return [word for word in firsts if word in known]
