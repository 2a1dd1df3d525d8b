#!/usr/bin/env python
"""Regenerate the examples of docs/cli.md from one real sequence of `turnstore` commands.

Usage (from the repository's root, with the development venv)::

    scripts/docs examples                               # rewrites docs/cli.md in place
    .venv/bin/python scripts/cli_examples.py --print    # prints the examples instead

Every ```console block of docs/cli.md that follows a line `<!-- cli-example: NAME -->` is
replaced by what the steps of NAME printed. The steps of every example run once, in the
order of `EXAMPLES` below (not the page's), in one fresh directory, `WORKDIR`: the outputs
are of one story, each command seeing what the commands before it left. The installed
`turnstore` console script runs them, with the default store `sqlite:///turnstore.db` of
that directory; standard error is shown with standard output, in the order written.

A Redis server that wants the password `pw123` and a port that accepts connections and
never answers are started on free loopback ports; the pages show them as `localhost:6379`
and `localhost:6390` (the one change made to what the commands printed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.faults import silent_listener  # noqa: E402
from tests.servers import start_redis  # noqa: E402

from turnstore import SessionRecord, import_sessions, open_store  # noqa: E402

PAGE = ROOT / "docs" / "cli.md"
WORKDIR = Path("/tmp/turnstore-docs")
PASSWORD = "pw123"
SHOWN_REDIS_PORT = 6379
SHOWN_SILENT_PORT = 6390
MARKER = re.compile(r"^(?P<indent> *)<!-- cli-example: (?P<name>[\w-]+) -->$")
TURNSTORE = Path(sys.executable).with_name("turnstore")


@dataclass
class Run:
    """What the story needs at hand: the servers' real ports and what was printed."""

    redis_port: int
    silent_port: int
    blocks: dict[str, list[str]] = field(default_factory=dict)

    @property
    def redis(self) -> str:
        return f"redis://:{PASSWORD}@127.0.0.1:{self.redis_port}/0"

    def shown(self, text: str) -> str:
        """`text` with the servers' loopback ports as the pages show them."""
        text = text.replace(f"127.0.0.1:{self.redis_port}", f"localhost:{SHOWN_REDIS_PORT}")
        return text.replace(f"127.0.0.1:{self.silent_port}", f"localhost:{SHOWN_SILENT_PORT}")


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TURNSTORE_URL", "NO_COLOR")}
    env.update({"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"})
    return env


def command_line(words: list[str]) -> str:
    return " ".join(shlex.quote(word) for word in words)


def turnstore(run: Run, name: str, *args: str, status: bool = False, stdin: str = "") -> None:
    """Run `turnstore ARGS` and add the command line and its output to example `name`."""
    done = subprocess.run(
        [str(TURNSTORE), *args],
        cwd=WORKDIR,
        env=environment(),
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    lines = run.blocks.setdefault(name, [])
    lines.append(run.shown(f"$ turnstore {command_line(list(args))}"))
    lines += run.shown(done.stdout).rstrip("\n").splitlines()
    if status:
        lines += ["$ echo $?", str(done.returncode)]


def shell(run: Run, name: str, command: str) -> None:
    """Run a shell command line (a pipe, `sha256sum`) and add it and its output."""
    done = subprocess.run(
        ["bash", "-c", command.replace("turnstore ", f"{TURNSTORE} ")],
        cwd=WORKDIR,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    lines = run.blocks.setdefault(name, [])
    lines.append(run.shown(f"$ {command}"))
    lines += run.shown(done.stdout).rstrip("\n").splitlines()


def application(work: Callable[[], Any]) -> None:
    """What an application does between two commands (through the library)."""
    asyncio.run(work())


# -- what the application writes -------------------------------------------------------------

LOG = "\n".join(f"2026-11-30T02:{n:02d}:00Z job {n} ok" for n in range(60))


def conversation(question: str, answer: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": question},
        {
            "type": "message",
            "role": "assistant",
            "id": "msg_1",
            "status": "completed",
            "content": [{"type": "output_text", "text": answer, "annotations": []}],
        },
    ]


async def support_and_logs() -> None:
    async with open_store(f"sqlite:///{WORKDIR / 'turnstore.db'}") as store:
        for session_id, user, items in (
            ("support-17", "u1", conversation("My order is late", "It ships tomorrow.")),
            ("support-18", "u2", conversation("Reset my password", "A link is on its way.")),
            (
                "logs-1",
                "u1",
                [
                    {"role": "user", "content": "Show me the nightly log"},
                    {
                        "type": "function_call",
                        "call_id": "call_1",
                        "name": "read_log",
                        "arguments": '{"day":"2026-11-30"}',
                    },
                    {"type": "function_call_output", "call_id": "call_1", "output": LOG},
                    *conversation("", "All 60 jobs succeeded.")[1:],
                ],
            ),
        ):
            session = store.session(session_id)
            await session.add_items(items)
            await session.update_metadata({"user_id": user})
            await asyncio.sleep(0.01)


async def later_turn() -> None:
    async with open_store(f"sqlite:///{WORKDIR / 'turnstore.db'}") as store:
        await store.session("logs-1").add_items(
            conversation("Any failures last week?", "None: every nightly run passed.")
        )


async def short_lived() -> None:
    async with open_store(f"sqlite:///{WORKDIR / 'turnstore.db'}") as store:
        soon = datetime.now(timezone.utc) + timedelta(seconds=1)
        record = SessionRecord("otp-1", conversation("Code?", "428 913"), expires_at=soon)
        await import_sessions(store, [record])
    await asyncio.sleep(1.5)


# -- the story -------------------------------------------------------------------------------


def read_only(run: Run) -> None:
    with contextlib.closing(sqlite3.connect(WORKDIR / "custom.db")) as conn:
        conn.execute("CREATE TABLE conv (session_id TEXT PRIMARY KEY, created_at TEXT)")
        conn.execute("CREATE TABLE conv_items (id INTEGER PRIMARY KEY, session_id, body)")
        conn.execute("INSERT INTO conv VALUES ('c1', '2026-11-30 10:00:00')")
        conn.commit()
    shell(run, "read-only", "sha256sum custom.db")
    turnstore(run, "read-only", "--url", "sqlite:///custom.db", "list")
    shell(run, "read-only", "sha256sum custom.db")


def time_budget(run: Run) -> None:
    silent = f"redis://127.0.0.1:{run.silent_port}/0"
    turnstore(run, "time", "--url", silent, "--timeout", "2", "list")
    turnstore(
        run, "time", "--timeout", "2", "migrate", "sqlite:///turnstore.db", silent, status=True
    )


def mistakes(run: Run) -> None:
    turnstore(run, "mistakes", "lst")
    turnstore(run, "mistakes", "list", "--lmit", "3")
    turnstore(run, "mistakes", "--tiemout", "3", "list")


def demo(run: Run) -> None:
    turnstore(run, "demo", "demo", "--session", "demo-1")
    application(support_and_logs)


def listing(run: Run) -> None:
    turnstore(run, "list", "list", "--limit", "2")
    cursor = re.search(r"--cursor (\S+)", "\n".join(run.blocks["list"]))
    assert cursor is not None, run.blocks["list"]
    turnstore(run, "list", "list", "--limit", "2", "--cursor", cursor[1])
    turnstore(run, "list", "list", "--meta", "user_id=u1")
    turnstore(run, "list-json", "list", "--json", "--limit", "1")


def showing(run: Run) -> None:
    turnstore(run, "show", "show", "logs-1")
    follow(run)


def follow(run: Run) -> None:
    """`show --follow` while the application adds a turn, then Ctrl-C."""
    args = ["show", "logs-1", "--last", "1", "--follow"]
    process = subprocess.Popen(
        [str(TURNSTORE), *args],
        cwd=WORKDIR,
        env=environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    printed: list[str] = []
    for line in process.stdout:
        printed.append(line)
        if line.startswith("(following"):
            break
    application(later_turn)
    for line in process.stdout:
        printed.append(line)
        if "every nightly run passed" in line:
            break
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=30)
    lines = run.blocks.setdefault("follow", [])
    lines.append(f"$ turnstore {command_line(args)}")
    lines += "".join([*printed, rest]).rstrip("\n").splitlines()
    lines.append("^C")


def stats(run: Run) -> None:
    turnstore(run, "stats", "stats")
    turnstore(run, "stats", "stats", "--json")


def export(run: Run) -> None:
    turnstore(run, "export", "export", "-o", "sessions.jsonl")
    turnstore(run, "export", "export", "-o", "sessions.jsonl", "--json")
    shell(run, "export", "turnstore export support-17 | cut -c 1-100")


def import_(run: Run) -> None:
    turnstore(run, "import", "--url", "sqlite:///copy.db", "import", "sessions.jsonl")
    turnstore(run, "import", "import", "sessions.jsonl")
    turnstore(run, "import", "--url", "sqlite:///copy.db", "import", "sessions.jsonl", "--json")
    (WORKDIR / "mixed.jsonl").write_text(
        '{"session_id":"a","items":[{"role":"user","content":"hi"}]}\n'
        '{"session_id":"b","items":["hi"]}\n'
        '{"session_id":"c","items":[\n',
        encoding="utf-8",
    )
    shell(run, "import-refused", "cat mixed.jsonl")
    turnstore(
        run, "import-refused", "--url", "sqlite:///other.db", "import", "mixed.jsonl", status=True
    )


def migrate(run: Run) -> None:
    turnstore(run, "migrate", "migrate", "--dry-run", "sqlite:///turnstore.db", run.redis)
    turnstore(run, "migrate", "migrate", "sqlite:///turnstore.db", run.redis)
    turnstore(run, "migrate", "migrate", "--dry-run", "sqlite:///turnstore.db", run.redis)
    turnstore(run, "migrate-json", "migrate", "sqlite:///turnstore.db", run.redis, "--json")


async def big_file() -> None:
    """2,000 sessions of 10 items, for a migration long enough to interrupt."""
    url = f"sqlite:///{WORKDIR / 'big.db'}"
    async with open_store(url) as store:
        for start in range(0, 2000, 500):
            records = [
                SessionRecord(f"big-{n}", conversation(f"question {n}", f"answer {n}") * 5)
                for n in range(start, start + 500)
            ]
            await import_sessions(store, records)


def interrupted(run: Run) -> None:
    """A migration stopped by Ctrl-C after its first progress line, then run again."""
    application(big_file)
    target = run.redis.replace("/0", "/1")
    args = ["migrate", "sqlite:///big.db", target]
    process = subprocess.Popen(
        [str(TURNSTORE), *args],
        cwd=WORKDIR,
        env=environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    printed: list[str] = []
    for line in process.stdout:
        printed.append(line)
        if line.startswith("  ") and "sessions," in line:  # the first progress line
            process.send_signal(signal.SIGINT)
            break
    rest, _ = process.communicate(timeout=60)
    lines = run.blocks.setdefault("migrate-resume", [])
    lines.append(run.shown(f"$ turnstore {command_line(args)}"))
    shown = run.shown("".join([*printed, rest])).rstrip("\n").splitlines()
    # The terminal shows the keypress where it came; the command's own lines follow it.
    lines += [*shown[: len(printed)], "^C", *shown[len(printed) :]]
    lines += ["$ echo $?", str(process.returncode)]
    shell(run, "migrate-resume", f"turnstore {command_line(args)} | tail -n 1")


def corrupt_source(run: Run) -> None:
    """Keys of the openai-agents-redis package in database 2, one item cut short."""
    import redis

    with redis.Redis(port=run.redis_port, password=PASSWORD, db=2) as client:
        for n in range(3):
            client.hset(
                f"agent_session:chat-{n}",
                mapping={
                    "session_id": f"chat-{n}",
                    "created_at": "1764500000.0",
                    "updated_at": f"{1764500000 + n}.0",
                },
            )
            items = [
                '{"role": "user", "content": "Hello"}',
                '{"role": "assistant", "content": "Hi! How can I help?"}',
            ]
            if n == 1:
                items.append('{"role": "user", "content": "Where is my ord')
            client.rpush(f"agent_messages:chat-{n}", *items)
    source = run.redis.replace("/0", "/2")
    target = run.redis.replace("/0", "/3")
    turnstore(
        run,
        "migrate-corrupt",
        "migrate",
        "--from-layout",
        "openai-agents-redis",
        source,
        target,
        status=True,
    )


def delete(run: Run) -> None:
    turnstore(run, "delete", "delete", "--meta", "source=demo", "--dry-run")
    turnstore(run, "delete", "delete", "--meta", "user_id=u2")
    turnstore(run, "delete", "--url", "sqlite:///copy.db", "delete", "--older-than", "30d")
    turnstore(run, "delete", "--url", "sqlite:///copy.db", "delete", "demo-1", "--json")
    turnstore(run, "delete", "delete", "nope", status=True)


def purge(run: Run) -> None:
    application(short_lived)
    turnstore(run, "purge", "purge", "--dry-run")
    turnstore(run, "purge", "purge", "--json")
    turnstore(run, "purge", "--url", run.redis, "purge", "--dry-run", "--json")


def reindex(run: Run) -> None:
    turnstore(run, "reindex", "reindex")
    turnstore(run, "reindex", "--url", "sqlite:///turnstore.db?index_metadata=user_id", "reindex")
    turnstore(
        run,
        "reindex",
        "--url",
        "sqlite:///turnstore.db?index_metadata=user_id",
        "reindex",
        "--json",
    )


def completion(run: Run) -> None:
    shell(run, "completion", "turnstore completion bash | head -n 3")
    shell(run, "completion", "turnstore completion zsh --json | cut -c 1-90 | head -n 3")


def messages(run: Run) -> None:
    unauthenticated = f"redis://127.0.0.1:{run.redis_port}/0"
    turnstore(run, "messages", "--url", unauthenticated, "list")
    turnstore(run, "messages", "--url", f"redis://:wrong@127.0.0.1:{run.redis_port}/0", "list")
    turnstore(run, "messages", "--url", "sqlite:////missing/dir/x.db", "demo")
    turnstore(run, "messages", "--url", "sqlite:////missing/dir/x.db", "stats")
    turnstore(run, "messages", "show", "nope")
    turnstore(run, "passwords", "--url", "redis://:s3cret@127.0.0.1:1/0", "stats", status=True)


#: Every example, in the order the story runs them.
EXAMPLES: list[Callable[[Run], None]] = [
    read_only,
    mistakes,
    demo,
    listing,
    showing,
    stats,
    export,
    import_,
    migrate,
    interrupted,
    corrupt_source,
    delete,
    purge,
    reindex,
    completion,
    messages,
    time_budget,
]
#: The names of the blocks they fill (checked against the page by tests/docs).
NAMES = (
    "read-only",
    "mistakes",
    "demo",
    "list",
    "list-json",
    "show",
    "follow",
    "stats",
    "export",
    "import",
    "import-refused",
    "migrate",
    "migrate-json",
    "migrate-resume",
    "migrate-corrupt",
    "delete",
    "purge",
    "reindex",
    "completion",
    "messages",
    "passwords",
    "time",
)


@contextlib.contextmanager
def servers() -> Iterator[Run]:
    server = start_redis("--requirepass", PASSWORD)
    try:
        with silent_listener() as silent_port:
            yield Run(redis_port=server.port, silent_port=silent_port)
    finally:
        server.stop()


def run_story() -> dict[str, list[str]]:
    if WORKDIR.exists():
        shutil.rmtree(WORKDIR)
    WORKDIR.mkdir(parents=True)
    with servers() as run:
        for example in EXAMPLES:
            started = time.monotonic()
            example(run)
            print(f"{example.__name__}: {time.monotonic() - started:.1f} s", file=sys.stderr)
    missing = set(NAMES) ^ set(run.blocks)
    assert not missing, f"examples and NAMES disagree: {sorted(missing)}"
    return run.blocks


def rewrite(page: str, blocks: dict[str, list[str]]) -> str:
    """`page` with the console block after each marker replaced by its example (indented
    as the marker is, for a block inside a list item)."""
    lines = page.splitlines()
    out: list[str] = []
    index = 0
    used: set[str] = set()
    while index < len(lines):
        line = lines[index]
        out.append(line)
        index += 1
        found = MARKER.match(line)
        if found is None:
            continue
        name, indent = found["name"], found["indent"]
        if name not in blocks:
            raise SystemExit(f"{PAGE}: no example named {name!r}")
        if index >= len(lines) or lines[index] != f"{indent}```console":
            raise SystemExit(f"{PAGE}: the marker of {name!r} is not followed by ```console")
        end = lines.index(f"{indent}```", index + 1)
        body = [f"{indent}{text}" if text else "" for text in blocks[name]]
        out += [f"{indent}```console", *body, f"{indent}```"]
        used.add(name)
        index = end + 1
    unused = set(blocks) - used
    if unused:
        raise SystemExit(f"{PAGE}: no marker for {sorted(unused)}")
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--print", action="store_true", help="print the examples, change nothing")
    args = parser.parse_args()
    blocks = run_story()
    if args.print:
        for name in NAMES:
            print(f"== {name}")
            print("\n".join(blocks[name]))
        return 0
    PAGE.write_text(rewrite(PAGE.read_text(encoding="utf-8"), blocks), encoding="utf-8")
    print(f"rewrote {PAGE.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
