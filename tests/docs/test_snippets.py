"""Every Python snippet of README.md and docs/*.md runs, as a user would paste it.

Each ```python block is written to a file and run by a new interpreter in an empty
directory, without an OpenAI key, and must exit 0 within SNIPPET_TIMEOUT seconds. A snippet
that needs a running Redis names `redis://localhost:6379` (and says so in its text): the test
points that address at a redis-server of its own, emptied before every snippet, and sets
TURNSTORE_URL and TURNSTORE_REDIS_URL to it.

A block that is a reference fragment (a signature or a class outline, as in docs/api.md) is
marked by the line `<!-- snippet: reference -->` right above its fence, and is not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import RedisServer, start_redis

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
REFERENCE_MARKER = "<!-- snippet: reference -->"
REDIS_PLACEHOLDER = "redis://localhost:6379"
SNIPPET_TIMEOUT = 60.0

_FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass(frozen=True)
class Snippet:
    page: Path
    line: int  # of the opening fence, 1-based
    code: str
    reference: bool

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def python_blocks(page: Path) -> list[Snippet]:
    """The ```python blocks of a Markdown page, with their reference marks."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Snippet] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        if opening.group(1) in ("python", "py"):
            marked = index > 0 and lines[index - 1].strip() == REFERENCE_MARKER
            code = "\n".join(lines[index + 1 : end]) + "\n"
            blocks.append(Snippet(page, index + 1, code, marked))
        index = end + 1
    return blocks


SNIPPETS = [snippet for page in PAGES for snippet in python_blocks(page)]
RUNNABLE = [snippet for snippet in SNIPPETS if not snippet.reference]


@pytest.fixture(scope="module")
def docs_redis() -> Iterator[RedisServer]:
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


def run_snippet(
    snippet: Snippet, directory: Path, redis_url: str
) -> subprocess.CompletedProcess[str]:
    code = snippet.code.replace(REDIS_PLACEHOLDER, redis_url)
    script = directory / "snippet.py"
    script.write_text(code, encoding="utf-8")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI_", "TURNSTORE_"))
    }
    env.update(TURNSTORE_URL=f"{redis_url}/0", TURNSTORE_REDIS_URL=f"{redis_url}/0")
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=directory,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SNIPPET_TIMEOUT,
    )


@pytest.mark.parametrize("snippet", RUNNABLE, ids=[s.name for s in RUNNABLE])
def test_snippet_runs(snippet: Snippet, docs_redis: RedisServer, tmp_path: Path) -> None:
    with docs_redis.client() as client:
        client.flushall()
    result = run_snippet(snippet, tmp_path, f"redis://{docs_redis.host}:{docs_redis.port}")
    assert result.returncode == 0, (
        f"{snippet.name} exited {result.returncode}\n--- stdout\n{result.stdout}"
        f"\n--- stderr\n{result.stderr}"
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert "OPENAI_API_KEY" not in result.stderr, f"{snippet.name} wants an API key"


def test_a_snippet_that_uses_redis_says_so() -> None:
    silent = [
        snippet.name
        for snippet in RUNNABLE
        if REDIS_PLACEHOLDER in snippet.code and "needs" not in snippet.code.lower()
    ]
    assert silent == [], "snippets on a running Redis that do not say they need it"


def test_only_the_api_reference_has_reference_fragments() -> None:
    marked = {snippet.page.name for snippet in SNIPPETS if snippet.reference}
    assert marked <= {"api.md"}, marked


def test_every_page_is_scanned() -> None:
    assert len(RUNNABLE) >= 20, [s.name for s in RUNNABLE]
    assert {"README.md", "offline.md"} <= {s.page.name for s in RUNNABLE}
