"""The session lock between workers (SPEC section 2, `lock()`): several stores, each with its
own pool as separate workers would have, or separate processes, on one session.

The workload is a read-modify-write cycle, the shape of an agent turn: read the history, work
a while, append what follows from what was read. Each cycle appends the number after the last
stored one, so the history counts 1, 2, 3... exactly when no cycle ever worked on a stale read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, Runner
from agents.testing import ModelCall, ModelStep, ScriptedModel, assistant_message

from tests.backends import unique_id
from tests.integration.test_runner import contents
from tests.servers import ClusterTopology, RedisServer, SentinelTopology
from tests.sqlite.sqlite_process import SESSION_ID, count_up, run_together
from turnstore import SessionStore, open_store
from turnstore.conformance.items import user
from turnstore.session import BaseSession

WORKERS = 4
CYCLES = 6
#: Time a cycle spends between reading and writing (a model call, in an agent turn).
THINK = 0.01

STORES = ["sqlite-file", "redis", "redis-cluster", "redis-sentinel"]


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    kind: str = request.param
    if kind == "sqlite-file":
        return f"sqlite:///{tmp_path / 'sessions.db'}"
    if kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return server.url
    if kind == "redis-cluster":
        cluster: ClusterTopology = request.getfixturevalue("redis_cluster")
        return cluster.url
    topology: SentinelTopology = request.getfixturevalue("redis_sentinel")
    return topology.url


@pytest.fixture
async def worker_stores(store_url: str) -> AsyncIterator[list[SessionStore]]:
    """One store per worker, each opened from the URL: separate pools (or connections)."""
    stores = [open_store(store_url) for _ in range(WORKERS)]
    try:
        yield stores
    finally:
        for store in stores:
            await store.close()


async def count_up_in_process(session: BaseSession, cycles: int, *, locked: bool) -> None:
    for _ in range(cycles):
        guard = session.lock(timeout=30) if locked else contextlib.nullcontext()
        async with guard:
            last = await session.get_items(limit=1)
            value = int(last[0]["content"]) if last else 0
            await asyncio.sleep(THINK)
            await session.add_items([user(str(value + 1))])


async def counted(session: BaseSession) -> list[int]:
    return [int(item["content"]) for item in await session.get_items()]


async def test_workers_on_separate_stores_lose_no_update_under_the_lock(
    worker_stores: list[SessionStore],
) -> None:
    session_id = unique_id()
    sessions = [store.session(session_id) for store in worker_stores]
    await asyncio.gather(*(count_up_in_process(s, CYCLES, locked=True) for s in sessions))
    assert await counted(sessions[0]) == list(range(1, WORKERS * CYCLES + 1))


async def test_the_same_workers_without_the_lock_lose_updates(
    worker_stores: list[SessionStore],
) -> None:
    # What the lock prevents: the workload above really races without it.
    session_id = unique_id()
    sessions = [store.session(session_id) for store in worker_stores]
    await asyncio.gather(*(count_up_in_process(s, CYCLES, locked=False) for s in sessions))
    values = await counted(sessions[0])
    assert len(values) == WORKERS * CYCLES  # every append landed...
    assert values[-1] < WORKERS * CYCLES, values  # ...but cycles worked on stale reads
    assert len(set(values)) < len(values), values


async def test_processes_on_one_sqlite_file_lose_no_update_under_the_lock(
    tmp_path: Path,
) -> None:
    db_file = str(tmp_path / "sessions.db")
    cycles = 10
    run_together(count_up, *((db_file, f"p{n}", cycles) for n in range(WORKERS)))
    async with open_store(f"sqlite:///{db_file}") as store:
        assert await counted(store.session(SESSION_ID)) == list(range(1, WORKERS * cycles + 1))


def answering_model(turns: int) -> ScriptedModel:
    """A model that answers each question and says how many items of history it was given."""

    async def answer(call: ModelCall) -> ModelStep:
        await asyncio.sleep(THINK)
        assert isinstance(call.input, list)
        question = call.input[-1]["content"]
        return ModelStep(output=[assistant_message(f"{question}: saw {len(call.input) - 1}")])

    return ScriptedModel([ModelStep.respond(answer) for _ in range(turns)])


async def test_runner_turns_of_several_workers_never_interleave_under_the_lock(
    worker_stores: list[SessionStore],
) -> None:
    session_id = unique_id()
    turns = 3

    async def worker(number: int, store: SessionStore) -> None:
        session = store.session(session_id)
        agent: Agent[Any] = Agent(name="assistant", model=answering_model(turns))
        for turn in range(turns):
            async with session.lock(timeout=30):
                await Runner.run(agent, f"w{number} q{turn}", session=session)

    await asyncio.gather(*(worker(n, store) for n, store in enumerate(worker_stores)))
    history = contents(await worker_stores[0].session(session_id).get_items())
    assert len(history) == 2 * WORKERS * turns
    for position in range(0, len(history), 2):
        question, reply = history[position], history[position + 1]
        # Whole turns, one after the other, each run given every earlier turn.
        assert question.startswith("user:w"), history
        assert reply == f"assistant:{question[5:]}: saw {position}", history
