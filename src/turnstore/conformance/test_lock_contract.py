"""The per-session lock (SPEC section 2, `lock()`), once, for every backend and topology."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from turnstore import (
    ConfigurationError,
    LockLostError,
    LockTimeoutError,
    SessionClosedError,
)
from turnstore.conformance.harness import Backend, unique_id


async def test_a_second_holder_waits_then_times_out(backend: Backend) -> None:
    session_id = unique_id()
    first = backend.session(session_id)
    second = backend.other_client_session(session_id)
    async with first.lock(timeout=1):
        started = time.monotonic()
        with pytest.raises(LockTimeoutError):
            async with second.lock(timeout=0.3):
                pytest.fail("two holders at once")
        waited = time.monotonic() - started
    assert 0.3 <= waited < 2.0


async def test_a_released_lock_can_be_taken_again(backend: Backend) -> None:
    session_id = unique_id()
    first = backend.session(session_id)
    second = backend.other_client_session(session_id)
    async with first.lock():
        pass
    async with second.lock(timeout=0.5) as held:
        assert held.held


async def test_locks_of_different_sessions_are_independent(backend: Backend) -> None:
    async with backend.session().lock(), backend.session().lock(timeout=0.5):
        pass


async def test_read_modify_write_under_the_lock_loses_no_update(backend: Backend) -> None:
    session_id = unique_id()
    workers = [backend.other_client_session(session_id) for _ in range(4)]
    await workers[0].update_metadata({"n": "0"})

    async def increment(worker: Any, times: int) -> None:
        for _ in range(times):
            async with worker.lock(timeout=30):
                info = await worker.get_info()
                await asyncio.sleep(0)  # give the others every chance to interleave
                await worker.update_metadata({"n": str(int(info.metadata["n"]) + 1)})

    await asyncio.gather(*(increment(w, 10) for w in workers))
    info = await workers[0].get_info()
    assert info is not None and info.metadata["n"] == "40"


async def test_a_dead_holder_blocks_others_only_until_its_lease_lapses(backend: Backend) -> None:
    session_id = unique_id()
    # A holder that took the lock for 0.4 s and died: nobody renews its lease.
    assert await backend.session(session_id).storage_lock_acquire("dead-holder", 400)
    started = time.monotonic()
    async with backend.other_client_session(session_id).lock(timeout=5):
        waited = time.monotonic() - started
    assert 0.2 < waited < 3.0


async def test_a_live_holder_keeps_the_lock_beyond_its_lease(backend: Backend) -> None:
    session_id = unique_id()
    holder = backend.session(session_id)
    other = backend.other_client_session(session_id)
    # The lease is renewed every third of it: only an event-loop or server stall of two
    # thirds of the lease (0.5 s here) could let it lapse, which a loaded CI machine can
    # reach with a much shorter lease. The other caller waits well beyond the lease.
    async with holder.lock(lease=0.75) as held:
        with pytest.raises(LockTimeoutError):
            async with other.lock(timeout=2.0):
                pytest.fail("the lock was stolen from a live holder")
        assert held.held
    # leaving raised nothing: the lock was never lost


async def test_a_holder_that_lost_its_lock_learns_it_on_exit(backend: Backend) -> None:
    session_id = unique_id()
    first = backend.session(session_id)
    second = backend.other_client_session(session_id)
    third = backend.other_client_session(session_id)
    lost = first.lock(lease=0.2)
    await lost.__aenter__()
    # The holder's process stalls past its lease (a blocked event loop, a long GC pause):
    # its renewals cannot run, the lease lapses, and the next caller takes the lock.
    time.sleep(0.5)  # noqa: ASYNC251 - blocking the loop is the point
    async with second.lock(timeout=5, lease=5):
        with pytest.raises(LockLostError):
            await lost.__aexit__(None, None, None)
        assert not lost.held
        # ...and its exit did not release the new holder's lock.
        with pytest.raises(LockTimeoutError):
            async with third.lock(timeout=0.2):
                pytest.fail("the lost holder released someone else's lock")


@pytest.mark.parametrize(
    "options", [{"timeout": -1}, {"lease": 0}, {"timeout": "1"}, {"lease": float("nan")}]
)
def test_bad_lock_arguments_are_configuration_errors(
    backend: Backend, options: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError):
        backend.session().lock(**options)


async def test_lock_after_close_raises(backend: Backend) -> None:
    session = backend.session()
    await session.close()
    with pytest.raises(SessionClosedError):
        session.lock()
