"""A database file is shared with the SDK's own `agents.SQLiteSession`, both ways."""

from __future__ import annotations

import asyncio
from typing import Any

from agents import SQLiteSession as SDKSession

from tests.sqlite.sqlite_support import assistant, contents, raw_rows, user
from turnstore.sqlite import SQLiteSession, SQLiteStore

HISTORY: list[Any] = [
    user("Quelle heure est-il ? ☕"),
    {"type": "function_call", "call_id": "c1", "name": "clock", "arguments": '{"tz": "UTC"}'},
    {"type": "function_call_output", "call_id": "c1", "output": "12:00"},
    assistant("Il est midi."),
    {"role": "user", "content": [{"type": "input_text", "text": "merci"}], "n": 1.5, "x": None},
]


async def test_a_file_the_sdk_wrote_reads_back_unchanged(db_file: str) -> None:
    sdk = SDKSession("conv", db_file)
    await sdk.add_items(HISTORY)
    sdk.close()

    async with SQLiteSession("conv", db_file) as ours:
        assert await ours.get_items() == HISTORY


async def test_the_sdk_reads_back_what_we_write(db_file: str) -> None:
    async with SQLiteSession("conv", db_file) as ours:
        await ours.add_items(HISTORY[:3])
        await ours.add_items(HISTORY[3:])

    sdk = SDKSession("conv", db_file)
    try:
        assert await sdk.get_items() == HISTORY
        assert await sdk.get_items(limit=2) == HISTORY[-2:]
    finally:
        sdk.close()


async def test_the_sdk_appends_to_and_pops_from_a_session_we_wrote(db_file: str) -> None:
    async with SQLiteSession("conv", db_file) as ours:
        await ours.add_items(HISTORY[:2])
        sdk = SDKSession("conv", db_file)
        try:
            await sdk.add_items(HISTORY[2:])
            assert await sdk.pop_item() == HISTORY[-1]
        finally:
            sdk.close()
        assert await ours.get_items() == HISTORY[:-1]
        info = await ours.get_info()
        assert info is not None and info.item_count == len(HISTORY) - 1


async def test_the_sdk_sessions_table_lists_our_sessions(db_file: str) -> None:
    async with SQLiteSession("ours", db_file) as ours:
        await ours.add_items([user("hi")])
        info = await ours.get_info()
    assert info is not None
    rows = raw_rows(db_file, "SELECT session_id, created_at, updated_at FROM agent_sessions")
    second = info.updated_at.strftime("%Y-%m-%d %H:%M:%S")
    assert rows == [("ours", second, second)]


async def test_a_session_only_the_sdk_wrote_is_listed_with_its_times(db_file: str) -> None:
    sdk = SDKSession("legacy", db_file)
    await sdk.add_items(HISTORY)
    sdk.close()
    (created_at,) = raw_rows(db_file, "SELECT created_at FROM agent_sessions")[0]

    async with SQLiteStore(db_file) as store:
        page = await store.list_sessions()
        assert [info.session_id for info in page.sessions] == ["legacy"]
        info = page.sessions[0]
        assert info.item_count == len(HISTORY)
        assert info.created_at.strftime("%Y-%m-%d %H:%M:%S") == created_at
        assert await store.count_sessions() == 1


async def test_writes_of_the_sdk_move_a_session_to_the_top_of_the_listing(db_file: str) -> None:
    async with SQLiteStore(db_file) as store:
        await store.session("older").add_items([user("a")])
        await asyncio.sleep(0.002)  # update times have millisecond resolution
        await store.session("newer").add_items([user("b")])
        await asyncio.sleep(0.002)
        # The SDK's updated_at has whole seconds; our side table has milliseconds.
        sdk = SDKSession("older", db_file)
        try:
            await sdk.add_items([user("c")])
        finally:
            sdk.close()
        page = await store.list_sessions()
        assert [info.session_id for info in page.sessions] == ["older", "newer"]
        assert page.sessions[0].item_count == 2


async def test_clearing_with_the_sdk_also_drops_our_metadata(db_file: str) -> None:
    async with SQLiteSession("conv", db_file) as ours:
        await ours.add_items([user("hi")])
        await ours.update_metadata({"user_id": "u1"})
        sdk = SDKSession("conv", db_file)
        try:
            await sdk.clear_session()
            await sdk.add_items([user("again")])
        finally:
            sdk.close()
        info = await ours.get_info()
        assert info is not None
        assert info.metadata == {}
        assert contents(await ours.get_items()) == ["again"]


async def test_we_store_message_data_as_json_text(db_file: str) -> None:
    async with SQLiteSession("conv", db_file) as ours:
        await ours.add_items([user("hi")])
    rows = raw_rows(db_file, "SELECT typeof(message_data), message_data FROM agent_messages")
    assert rows == [("text", '{"role":"user","content":"hi"}')]
