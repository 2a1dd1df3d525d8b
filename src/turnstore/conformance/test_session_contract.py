"""The session contract (SPEC section 2), once, for every backend and topology."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import logging
import math
from datetime import timedelta
from typing import Any

import pytest
from agents import SessionSettings

from turnstore import (
    ConfigurationError,
    CorruptItemError,
    InvalidItemError,
    SessionClosedError,
)
from turnstore.conformance.harness import Backend, unique_id
from turnstore.conformance.items import (
    SDK_ITEMS,
    assistant,
    function_call,
    function_output,
    turn,
    user,
)

# -- round trip and ordering ---------------------------------------------------------------


async def test_new_session_has_no_items(backend: Backend) -> None:
    session = backend.session()
    assert await session.get_items() == []
    assert await session.get_info() is None


async def test_sdk_items_round_trip_exactly(backend: Backend) -> None:
    session = backend.session()
    original = copy.deepcopy(SDK_ITEMS)
    await session.add_items(SDK_ITEMS)
    assert await session.get_items() == original
    assert original == SDK_ITEMS  # the caller's items are not modified


async def test_round_trip_keeps_types(backend: Backend) -> None:
    session = backend.session()
    item = {"i": 1, "f": 1.0, "big": 12345678901234567890123, "neg": -0.5, "n": None, "b": True}
    await session.add_items([item])
    (stored,) = await session.get_items()
    assert stored == item
    assert {k: type(v) for k, v in stored.items()} == {k: type(v) for k, v in item.items()}


async def test_batches_are_appended_in_order(backend: Backend) -> None:
    session = backend.session()
    for n in range(5):
        await session.add_items(turn(n))
    assert await session.get_items() == [item for n in range(5) for item in turn(n)]


async def test_empty_batch_is_a_no_op_and_creates_nothing(backend: Backend) -> None:
    session = backend.session()
    await session.add_items([])
    assert await session.get_info() is None


# -- limits and windows --------------------------------------------------------------------


async def test_limit_returns_the_latest_items_oldest_first(backend: Backend) -> None:
    session = backend.session()
    await session.add_items([user(str(n)) for n in range(10)])
    assert await session.get_items(limit=3) == [user("7"), user("8"), user("9")]


@pytest.mark.parametrize("limit", [0, -1, -100])
async def test_limit_zero_or_negative_returns_nothing(backend: Backend, limit: int) -> None:
    session = backend.session()
    await session.add_items([user("a")])
    assert await session.get_items(limit=limit) == []


async def test_limit_beyond_history_returns_everything(backend: Backend) -> None:
    session = backend.session()
    await session.add_items([user("a"), user("b")])
    assert await session.get_items(limit=50) == [user("a"), user("b")]


async def test_session_settings_limit_applies_without_explicit_limit(backend: Backend) -> None:
    session = backend.session(session_settings=SessionSettings(limit=2))
    await session.add_items([user(str(n)) for n in range(5)])
    assert await session.get_items() == [user("3"), user("4")]


async def test_explicit_limit_wins_over_session_settings(backend: Backend) -> None:
    session = backend.session(session_settings=SessionSettings(limit=2))
    await session.add_items([user(str(n)) for n in range(5)])
    assert await session.get_items(limit=4) == [user(str(n)) for n in range(1, 5)]


async def test_session_settings_mapping_is_normalized(backend: Backend) -> None:
    session = backend.session(session_settings={"limit": 1})
    assert session.session_settings == SessionSettings(limit=1)
    assert backend.session().session_settings == SessionSettings()


def test_session_settings_mapping_with_unknown_field_raises_type_error(backend: Backend) -> None:
    with pytest.raises(TypeError):
        backend.session(session_settings={"limit": 1, "bogus": 2})


async def test_max_turns_window_returns_the_last_turns(backend: Backend) -> None:
    session = backend.session(max_turns=2)
    for n in range(6):
        await session.add_items(turn(n))
    assert await session.get_items() == turn(4) + turn(5)


async def test_max_turns_window_never_separates_a_tool_call_from_its_output(
    backend: Backend,
) -> None:
    session = backend.session(max_turns=1)
    await session.add_items(turn(0))
    # One turn with several model round trips: the window must keep all of it.
    await session.add_items(
        [user("q"), function_call("c1"), function_output("c1"), function_call("c2")]
    )
    await session.add_items([function_output("c2"), assistant("done")])
    window = await session.get_items()
    assert window[0] == user("q")
    assert [i.get("type") for i in window[1:]] == [
        "function_call",
        "function_call_output",
        "function_call",
        "function_call_output",
        "message",
    ]


async def test_max_turns_window_with_fewer_turns_returns_everything(backend: Backend) -> None:
    session = backend.session(max_turns=10)
    history = [{"role": "system", "content": "sys"}, *turn(0), *turn(1)]
    await session.add_items(history)
    assert await session.get_items() == history


async def test_max_turns_window_reaches_far_back_in_a_long_turn(backend: Backend) -> None:
    session = backend.session(max_turns=1)
    long_turn = [user("start")] + [function_output(f"c{n}") for n in range(300)]
    await session.add_items(turn(0) + long_turn)
    assert await session.get_items() == long_turn


async def test_explicit_limit_wins_over_max_turns(backend: Backend) -> None:
    session = backend.session(max_turns=1)
    await session.add_items(turn(0) + turn(1))
    assert await session.get_items(limit=7) == (turn(0) + turn(1))[-7:]


async def test_max_items_trims_the_oldest_on_append(backend: Backend) -> None:
    session = backend.session(max_items=4)
    await session.add_items([user(str(n)) for n in range(3)])
    await session.add_items([user(str(n)) for n in range(3, 6)])
    assert await session.get_items() == [user(str(n)) for n in range(2, 6)]
    info = await session.get_info()
    assert info is not None and info.item_count == 4


# -- pop, clear, replace ---------------------------------------------------------------------


async def test_pop_returns_and_removes_the_newest_item(backend: Backend) -> None:
    session = backend.session()
    await session.add_items([user("a"), user("b")])
    assert await session.pop_item() == user("b")
    assert await session.get_items() == [user("a")]


async def test_pop_on_an_empty_session_returns_none(backend: Backend) -> None:
    session = backend.session()
    assert await session.pop_item() is None
    assert await session.get_info() is None


async def test_concurrent_pops_never_return_the_same_item(backend: Backend) -> None:
    session_id = unique_id()
    writer = backend.session(session_id)
    await writer.add_items([user(str(n)) for n in range(40)])
    poppers = [backend.other_client_session(session_id) for _ in range(4)]
    results = await asyncio.gather(*(p.pop_item() for p in poppers for _ in range(12)))
    popped = [r["content"] for r in results if r is not None]
    assert len(popped) == 40
    assert sorted(popped, key=int) == [str(n) for n in range(40)]
    assert results.count(None) == 8
    assert await writer.get_items() == []


async def test_clear_removes_items_and_metadata(backend: Backend) -> None:
    session = backend.session()
    await session.add_items([user("a")])
    await session.update_metadata({"k": "v"})
    await session.clear_session()
    assert await session.get_items() == []
    assert await session.get_info() is None
    await session.add_items([user("b")])
    info = await session.get_info()
    assert info is not None and info.metadata == {}


async def test_replace_items_replaces_the_whole_history(backend: Backend) -> None:
    session = backend.session()
    await session.add_items(turn(0) + turn(1))
    await session.update_metadata({"k": "v"})
    await session.replace_items([user("summary")])
    assert await session.get_items() == [user("summary")]
    info = await session.get_info()
    assert info is not None and info.metadata == {"k": "v"}


async def test_replace_items_with_a_bad_item_changes_nothing(backend: Backend) -> None:
    session = backend.session()
    await session.add_items([user("a")])
    with pytest.raises(InvalidItemError):
        await session.replace_items([user("b"), {"bad": math.nan}])
    assert await session.get_items() == [user("a")]


# -- info and metadata ------------------------------------------------------------------------


async def test_get_info_describes_the_session(backend: Backend) -> None:
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    session = backend.session()
    await session.add_items(turn(0))
    info = await session.get_info()
    assert info is not None
    assert info.session_id == session.session_id
    assert info.item_count == 5
    assert info.expires_at is None
    assert info.metadata == {}
    assert info.created_at.tzinfo is not None and info.updated_at.tzinfo is not None
    after = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)
    assert before <= info.created_at <= info.updated_at <= after


async def test_updated_at_moves_with_writes(backend: Backend) -> None:
    session = backend.session()
    await session.add_items([user("a")])
    first = await session.get_info()
    await asyncio.sleep(0.02)
    await session.add_items([user("b")])
    second = await session.get_info()
    assert first is not None and second is not None
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at


async def test_update_metadata_merges_and_none_removes(backend: Backend) -> None:
    session = backend.session()
    await session.update_metadata({"user_id": "u1", "topic": "weather"})
    await session.update_metadata({"topic": None, "lang": "fr"})
    info = await session.get_info()
    assert info is not None
    assert info.metadata == {"user_id": "u1", "lang": "fr"}
    assert info.item_count == 0  # metadata alone creates the session


async def test_the_creation_time_stays_and_the_update_time_moves(backend: Backend) -> None:
    session = backend.session()
    await session.update_metadata({"k": "v"})  # metadata first: it creates the session
    first = await session.get_info()
    assert first is not None
    await asyncio.sleep(0.05)
    await session.add_items([user("a")])
    await asyncio.sleep(0.05)
    await session.pop_item()
    later = await session.get_info()
    assert later is not None
    assert later.created_at == first.created_at
    assert later.updated_at >= first.updated_at + timedelta(milliseconds=90)


async def test_removing_metadata_of_a_missing_session_creates_nothing(backend: Backend) -> None:
    session = backend.session()
    await session.update_metadata({"k": None})
    assert await session.get_info() is None


@pytest.mark.parametrize("bad", [{"k": 1}, {1: "v"}, {"": "v"}, {"k": b"v"}, ["k"]])
async def test_bad_metadata_is_refused_and_writes_nothing(backend: Backend, bad: Any) -> None:
    session = backend.session()
    with pytest.raises(InvalidItemError):
        await session.update_metadata(bad)
    assert await session.get_info() is None


# -- fork ---------------------------------------------------------------------------------------


async def test_fork_copies_history_and_metadata(backend: Backend) -> None:
    source = backend.session()
    await source.add_items(turn(0) + turn(1))
    await source.update_metadata({"user_id": "u1"})
    copy_ = await source.fork(unique_id("fork"))
    assert type(copy_) is type(source)
    assert await copy_.get_items() == turn(0) + turn(1)
    info = await copy_.get_info()
    assert info is not None and info.metadata == {"user_id": "u1"}


async def test_fork_upto_turn_copies_only_the_first_turns(backend: Backend) -> None:
    source = backend.session()
    await source.add_items([{"role": "system", "content": "s"}, *turn(0), *turn(1), *turn(2)])
    copy_ = await source.fork(unique_id("fork"), upto_turn=2)
    assert await copy_.get_items() == [{"role": "system", "content": "s"}, *turn(0), *turn(1)]


async def test_fork_is_independent_of_its_source(backend: Backend) -> None:
    source = backend.session()
    await source.add_items(turn(0))
    copy_ = await source.fork(unique_id("fork"))
    await copy_.add_items(turn(1))
    await source.clear_session()
    assert await copy_.get_items() == turn(0) + turn(1)
    assert await source.get_items() == []


async def test_fork_keeps_the_source_options(backend: Backend) -> None:
    source = backend.session(max_turns=1)
    await source.add_items(turn(0) + turn(1))
    copy_ = await source.fork(unique_id("fork"))
    assert await copy_.get_items() == turn(1)


async def test_fork_to_the_same_id_is_refused(backend: Backend) -> None:
    source = backend.session()
    with pytest.raises(ConfigurationError):
        await source.fork(source.session_id)


# -- TTL ------------------------------------------------------------------------------------------


async def test_session_with_ttl_expires_whole(backend: Backend) -> None:
    session = backend.session(ttl=0.4)
    await session.add_items(turn(0))
    await session.update_metadata({"k": "v"})
    info = await session.get_info()
    assert info is not None and info.expires_at is not None
    await asyncio.sleep(0.8)
    assert await session.get_items() == []
    assert await session.get_info() is None


async def test_ttl_slides_on_every_write(backend: Backend) -> None:
    session = backend.session(ttl=0.6)
    for n in range(4):
        await session.add_items([user(str(n))])
        await asyncio.sleep(0.3)
    assert len(await session.get_items()) == 4


async def test_ttl_slides_on_reads(backend: Backend) -> None:
    session = backend.session(ttl=0.6)
    await session.add_items([user("a")])
    for _ in range(4):
        await asyncio.sleep(0.3)
        assert await session.get_items() == [user("a")]


async def test_reads_do_not_slide_ttl_when_disabled(backend: Backend) -> None:
    session = backend.session(ttl=0.6, refresh_ttl_on_read=False)
    await session.add_items([user("a")])
    await asyncio.sleep(0.35)
    assert await session.get_items() == [user("a")]
    await asyncio.sleep(0.45)
    assert await session.get_items() == []


async def test_touch_refreshes_ttl(backend: Backend) -> None:
    session = backend.session(ttl=0.6, refresh_ttl_on_read=False)
    await session.add_items([user("a")])
    for _ in range(3):
        await asyncio.sleep(0.3)
        assert await session.touch() is True
    assert await session.get_items() == [user("a")]


async def test_touch_on_a_missing_session_returns_false(backend: Backend) -> None:
    session = backend.session(ttl=10)
    assert await session.touch() is False
    assert await session.get_info() is None


async def test_expires_at_follows_the_ttl(backend: Backend) -> None:
    session = backend.session(ttl=100)
    await session.add_items([user("a")])
    info = await session.get_info()
    assert info is not None and info.expires_at is not None
    remaining = (info.expires_at - dt.datetime.now(dt.timezone.utc)).total_seconds()
    assert 90 < remaining <= 101


async def test_writing_without_ttl_makes_the_session_permanent(backend: Backend) -> None:
    session_id = unique_id()
    await backend.session(session_id, ttl=0.5).add_items([user("a")])
    await backend.session(session_id).add_items([user("b")])
    await asyncio.sleep(0.8)
    info = await backend.session(session_id).get_info()
    assert info is not None and info.expires_at is None and info.item_count == 2


# -- isolation ------------------------------------------------------------------------------------

TRICKY_IDS = [
    "a",
    "a:messages",
    "a:items",
    "{a}",
    "a}",
    "{",
    "}",
    "*",
    "a*",
    "%7D",
    "a%3Aitems",
    ":",
    " ",
    "x" * 2000,
    "ünïcødé-中文-🧪",
    "a\nb",
]


async def test_tricky_ids_never_share_data(backend: Backend) -> None:
    sessions = [backend.session(sid) for sid in TRICKY_IDS]
    for n, session in enumerate(sessions):
        await session.add_items([user(str(n))])
        await session.update_metadata({"n": str(n)})
    for n, session in enumerate(sessions):
        assert await session.get_items() == [user(str(n))], session.session_id[:40]
        info = await session.get_info()
        assert info is not None and info.metadata == {"n": str(n)}
        assert info.session_id == TRICKY_IDS[n]
    await sessions[0].clear_session()
    for n, session in enumerate(sessions[1:], start=1):
        assert await session.get_items() == [user(str(n))]


# -- concurrency ----------------------------------------------------------------------------------


async def test_concurrent_batches_never_interleave(backend: Backend) -> None:
    session_id = unique_id()
    writers = [backend.other_client_session(session_id) for _ in range(4)]

    async def write(w: int) -> None:
        for b in range(15):
            await writers[w].add_items([user(f"{w}-{b}-{i}") for i in range(4)])

    await asyncio.gather(*(write(w) for w in range(4)))
    items = await writers[0].get_items()
    assert len(items) == 4 * 15 * 4
    for start in range(0, len(items), 4):
        batch = [item["content"].rsplit("-", 1) for item in items[start : start + 4]]
        assert {prefix for prefix, _ in batch} == {batch[0][0]}
        assert [i for _, i in batch] == ["0", "1", "2", "3"]
    per_writer: dict[str, list[int]] = {}
    for start in range(0, len(items), 4):
        w, b = items[start]["content"].split("-")[:2]
        per_writer.setdefault(w, []).append(int(b))
    assert all(batches == list(range(15)) for batches in per_writer.values())


async def test_repeated_idempotency_key_is_a_no_op(backend: Backend) -> None:
    session = backend.session()
    await session.add_items(turn(0), idempotency_key="turn-0")
    await session.add_items(turn(0), idempotency_key="turn-0")
    await session.add_items(turn(1), idempotency_key="turn-1")
    assert await session.get_items() == turn(0) + turn(1)


async def test_an_idempotency_key_outlives_a_clear(backend: Backend) -> None:
    session = backend.session()
    await session.add_items(turn(0), idempotency_key="turn-0")
    await session.clear_session()
    await session.add_items(turn(0), idempotency_key="turn-0")  # a late resend
    assert await session.get_items() == []
    await session.add_items(turn(1), idempotency_key="turn-1")
    assert await session.get_items() == turn(1)


async def test_an_idempotency_key_outlives_the_sessions_ttl(backend: Backend) -> None:
    session = backend.session(ttl=0.3)
    await session.add_items(turn(0), idempotency_key="turn-0")
    await asyncio.sleep(0.6)
    await session.add_items(turn(0), idempotency_key="turn-0")  # resent after expiry
    assert await session.get_info() is None


async def test_idempotency_keys_are_per_session(backend: Backend) -> None:
    first, second = backend.session(), backend.session()
    await first.add_items([user("a")], idempotency_key="k")
    await second.add_items([user("b")], idempotency_key="k")
    assert await second.get_items() == [user("b")]


# -- bad input ----------------------------------------------------------------------------------


class _Opaque:
    pass


BAD_BATCHES: dict[str, Any] = {
    "not a dict": ["text"],
    "none item": [None],
    "int key": [{1: "v"}],
    "nested int key": [{"a": [{"b": {2: "v"}}]}],
    "tuple key": [{("a",): "v"}],
    "nan": [{"v": math.nan}],
    "infinity": [{"v": math.inf}],
    "negative infinity nested": [{"v": [1, {"w": -math.inf}]}],
    "bytes value": [{"v": b"raw"}],
    "set value": [{"v": {1, 2}}],
    "datetime value": [{"v": dt.datetime(2024, 1, 1)}],
    "object value": [{"v": _Opaque()}],
    "lone surrogate": [{"v": "\ud800"}],
}


@pytest.mark.parametrize("case", sorted(BAD_BATCHES))
async def test_bad_item_is_refused_and_nothing_of_the_batch_is_written(
    backend: Backend, case: str
) -> None:
    session = backend.session()
    with pytest.raises(InvalidItemError):
        await session.add_items([user("valid first"), *BAD_BATCHES[case]])
    assert await session.get_items() == []
    assert await session.get_info() is None


async def test_invalid_item_error_is_also_value_and_type_error(backend: Backend) -> None:
    session = backend.session()
    with pytest.raises(TypeError):
        await session.add_items([{"v": math.nan}])
    with pytest.raises(ValueError):
        await session.add_items([{"v": math.nan}])


@pytest.mark.parametrize("items", [None, {"role": "user"}, "text"])
async def test_items_must_be_a_list(backend: Backend, items: Any) -> None:
    session = backend.session()
    with pytest.raises(InvalidItemError):
        await session.add_items(items)
    assert await session.get_info() is None


async def test_item_larger_than_max_item_bytes_is_refused(backend: Backend) -> None:
    session = backend.session(max_item_bytes=1000)
    await session.add_items([user("x" * 900)])
    with pytest.raises(InvalidItemError, match="max_item_bytes"):
        await session.add_items([user("y"), user("x" * 1000)])
    assert await session.get_items() == [user("x" * 900)]


async def test_default_max_item_bytes_is_8_mib(backend: Backend) -> None:
    session = backend.session()
    with pytest.raises(InvalidItemError):
        await session.add_items([user("x" * (8 * 1024 * 1024))])
    assert await session.get_info() is None


@pytest.mark.parametrize("session_id", ["", 5, b"bytes", "\udc00"])
def test_bad_session_id_is_a_configuration_error(backend: Backend, session_id: Any) -> None:
    with pytest.raises(ConfigurationError):
        backend.session(session_id)


@pytest.mark.parametrize(
    "options",
    [
        {"ttl": -1},
        {"ttl": 0},
        {"ttl": math.nan},
        {"ttl": "60"},
        {"max_turns": 0},
        {"max_items": -5},
        {"max_turns": 1.5},
        {"on_corrupt": "ignore"},
        {"refresh_ttl_on_read": "yes"},
        {"max_item_bytes": 0},
    ],
)
def test_bad_option_is_a_configuration_error(backend: Backend, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        backend.session(**options)


@pytest.mark.parametrize("key", ["", 7])
async def test_bad_idempotency_key_is_refused(backend: Backend, key: Any) -> None:
    session = backend.session()
    with pytest.raises(ConfigurationError):
        await session.add_items([user("a")], idempotency_key=key)
    assert await session.get_info() is None


@pytest.mark.parametrize("upto_turn", [-1, 1.5, "2"])
async def test_bad_upto_turn_is_refused(backend: Backend, upto_turn: Any) -> None:
    session = backend.session()
    with pytest.raises(ConfigurationError):
        await session.fork(unique_id(), upto_turn=upto_turn)


# -- corrupt stored data ---------------------------------------------------------------------

#: Deeper than any JSON parser here goes (orjson stops at 1,024 levels, the standard library
#: at the recursion limit).
TOO_DEEP = '{"v":' * 5_000 + "1" + "}" * 5_000
CORRUPT_VALUES = ["{not json", "[1, 2]", '"a string"', "NaN", "", TOO_DEEP]


@pytest.mark.parametrize("raw", CORRUPT_VALUES)
async def test_corrupt_item_is_skipped_logged_and_kept(
    backend: Backend, raw: str, caplog: pytest.LogCaptureFixture
) -> None:
    session = backend.session()
    await session.add_items([user("a")])
    await backend.inject_raw(session, raw)
    await session.add_items([user("b")])
    with caplog.at_level(logging.WARNING, logger="turnstore"):
        assert await session.get_items() == [user("a"), user("b")]
    assert any("position 1" in record.getMessage() for record in caplog.records)
    info = await session.get_info()
    assert info is not None and info.item_count == 3  # still stored, for inspection


@pytest.mark.parametrize("raw", ['{"role":"user"},{"content":"x"}', '{"a":"}', "{not json}"])
async def test_corrupt_item_in_a_long_history_is_skipped(backend: Backend, raw: str) -> None:
    session = backend.session()
    await session.add_items([user(str(n)) for n in range(10)])
    await backend.inject_raw(session, raw)
    await session.add_items([user(str(n)) for n in range(10, 20)])
    assert await session.get_items() == [user(str(n)) for n in range(20)]
    assert len(await session.get_items(limit=15)) == 15


async def test_limit_counts_valid_items_only(backend: Backend) -> None:
    session = backend.session()
    await session.add_items([user("a"), user("b")])
    await backend.inject_raw(session, "{broken")
    await backend.inject_raw(session, "{broken too")
    await session.add_items([user("c")])
    assert await session.get_items(limit=2) == [user("b"), user("c")]


async def test_corrupt_item_raises_in_raise_mode(backend: Backend) -> None:
    session = backend.session(on_corrupt="raise")
    await session.add_items([user("a")])
    await backend.inject_raw(session, "{broken")
    with pytest.raises(CorruptItemError) as caught:
        await session.get_items()
    assert caught.value.session_id == session.session_id
    assert caught.value.position == 1
    assert session.session_id in str(caught.value)


async def test_pop_skips_a_corrupt_newest_item_and_leaves_it(backend: Backend) -> None:
    session = backend.session()
    await session.add_items([user("a"), user("b")])
    await backend.inject_raw(session, "{broken")
    assert await session.pop_item() == user("b")
    info = await session.get_info()
    assert info is not None and info.item_count == 2
    assert await session.get_items() == [user("a")]


async def test_pop_raises_on_a_corrupt_newest_item_in_raise_mode(backend: Backend) -> None:
    session = backend.session(on_corrupt="raise")
    await session.add_items([user("a")])
    await backend.inject_raw(session, "{broken")
    with pytest.raises(CorruptItemError):
        await session.pop_item()
    info = await session.get_info()
    assert info is not None and info.item_count == 2


# -- closed state ------------------------------------------------------------------------------

CALLS: dict[str, Any] = {
    "get_items": lambda s: s.get_items(),
    "add_items": lambda s: s.add_items([user("a")]),
    "add_items_empty": lambda s: s.add_items([]),
    "pop_item": lambda s: s.pop_item(),
    "clear_session": lambda s: s.clear_session(),
    "replace_items": lambda s: s.replace_items([]),
    "get_info": lambda s: s.get_info(),
    "update_metadata": lambda s: s.update_metadata({"k": "v"}),
    "fork": lambda s: s.fork(unique_id()),
    "touch": lambda s: s.touch(),
}


@pytest.mark.parametrize("call", sorted(CALLS))
async def test_every_call_after_close_raises(backend: Backend, call: str) -> None:
    session = backend.session()
    await session.add_items([user("a")])
    await session.close()
    with pytest.raises(SessionClosedError, match=f"^{session.kind} is closed$"):
        await CALLS[call](session)
    with pytest.raises(RuntimeError):
        await CALLS[call](session)


async def test_close_is_idempotent_and_async_with_closes(backend: Backend) -> None:
    async with backend.session() as session:
        await session.add_items([user("a")])
    assert session.closed
    await session.close()
    with pytest.raises(SessionClosedError):
        await session.get_items()
