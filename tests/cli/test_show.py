"""`show`: long texts cut unless `--full`, and `--follow` printing items as they arrive."""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any

from tests.cli.support import CLI, cli_env, run_cli, seed
from turnstore import open_store

HUGE = "x" * 20_000
LONG_ANSWER = "word " * 1_000  # 5,000 characters


def long_conversation() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "Dump the log"},
        {"type": "function_call", "call_id": "c1", "name": "read_log", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": HUGE},
        {"role": "assistant", "content": LONG_ANSWER},
    ]


def test_show_cuts_a_huge_tool_output_and_says_how_much(store_url: str, tmp_path: Path) -> None:
    seed(store_url, [("log", long_conversation(), {})])
    result = run_cli("--url", store_url, "show", "log", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[19,500 of 20,000 characters cut; --full shows all]" in result.stdout
    assert "[3,000 of 5,000 characters cut; --full shows all]" in result.stdout
    assert HUGE not in result.stdout
    assert len(result.stdout) < 4_000


def test_show_full_prints_everything(store_url: str, tmp_path: Path) -> None:
    seed(store_url, [("log", long_conversation(), {})])
    result = run_cli("--url", store_url, "show", "log", "--full", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "characters cut" not in result.stdout
    assert result.stdout.count("x") >= len(HUGE)


def test_show_json_is_never_cut(store_url: str, tmp_path: Path) -> None:
    seed(store_url, [("log", long_conversation(), {})])
    result = run_cli("--url", store_url, "show", "log", "--json", cwd=tmp_path)
    assert json.loads(result.stdout) == long_conversation()


class Lines:
    """The lines a process prints, collected by a thread so that reading never blocks."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.seen = ""
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)

    def until(self, text: str, timeout: float) -> str:
        """Everything printed so far, once a line containing `text` has been printed."""
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{text!r} not printed within {timeout} s: {self.seen!r}")
            try:
                self.seen += self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
        return self.seen


def add(url: str, session_id: str, items: list[dict[str, Any]]) -> None:
    async def write() -> None:
        async with open_store(url) as store:
            await store.session(session_id).add_items(items)

    asyncio.run(write())


def _interruptible() -> None:
    # A test run started in the background of a shell (`cmd &`) inherits SIGINT ignored,
    # and so would the command, which then could not be stopped the way a user stops it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def follow(url: str, *extra: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "--url", url, "show", "live", "--follow", *extra],
        cwd=cwd,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_interruptible,
    )


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stderr


def test_follow_prints_new_items_as_they_arrive(store_url: str, tmp_path: Path) -> None:
    seed(store_url, [("live", [{"role": "user", "content": "first question"}], {})])
    process = follow(store_url, cwd=tmp_path)
    try:
        assert process.stdout is not None
        printed = Lines(process.stdout)
        assert "first question" in printed.until("following", 30)
        add(store_url, "live", [{"role": "assistant", "content": "a later answer"}])
        printed.until("a later answer", 15)
        add(store_url, "live", [{"role": "user", "content": "and another"}])
        assert printed.until("and another", 15).count("first question") == 1
    finally:
        code, stderr = stop(process)
    assert code == 0, stderr  # Ctrl-C is how following ends


def test_follow_json_prints_one_item_per_line(store_url: str, tmp_path: Path) -> None:
    first = {"role": "user", "content": "q"}
    seed(store_url, [("live", [first], {})])
    process = follow(store_url, "--json", cwd=tmp_path)
    try:
        assert process.stdout is not None
        printed = Lines(process.stdout)
        printed.until('"q"', 30)
        later = {"role": "assistant", "content": "a", "n": 1}
        add(store_url, "live", [later])
        seen = printed.until('"n": 1', 15)
    finally:
        stop(process)
    lines = [json.loads(line) for line in seen.splitlines() if line.strip()]
    assert lines == [first, later]


def replace(url: str, session_id: str, items: list[dict[str, Any]]) -> None:
    async def write() -> None:
        async with open_store(url) as store:
            await store.session(session_id).replace_items(items)

    asyncio.run(write())


def test_follow_prints_an_item_that_took_the_place_of_a_popped_one(
    store_url: str, tmp_path: Path
) -> None:
    question = {"role": "user", "content": "first question"}
    seed(store_url, [("live", [question, {"role": "assistant", "content": "draft answer"}], {})])
    process = follow(store_url, cwd=tmp_path)
    try:
        assert process.stdout is not None
        printed = Lines(process.stdout)
        printed.until("following", 30)
        # A pop and an add in one step: the item count is the same as before.
        replace(store_url, "live", [question, {"role": "assistant", "content": "final answer"}])
        shown = printed.until("final answer", 15)
    finally:
        stop(process)
    assert "(the items shown last were removed or replaced)" in shown


def test_follow_prints_nothing_for_a_change_of_metadata_alone(
    store_url: str, tmp_path: Path
) -> None:
    seed(store_url, [("live", [{"role": "user", "content": "first question"}], {})])
    process = follow(store_url, cwd=tmp_path)
    try:
        assert process.stdout is not None
        printed = Lines(process.stdout)
        printed.until("following", 30)

        async def tag() -> None:
            async with open_store(store_url) as store:
                await store.session("live").update_metadata({"seen": "yes"})

        asyncio.run(tag())
        add(store_url, "live", [{"role": "assistant", "content": "a later answer"}])
        shown = printed.until("a later answer", 15)
    finally:
        stop(process)
    after = shown.split("following", 1)[1]
    assert "removed or replaced" not in after
    assert after.count("first question") == 0
