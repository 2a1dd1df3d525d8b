"""Table names: validated, quoted, and shared with the SDK."""

from __future__ import annotations

from typing import Any

import pytest
from agents import SQLiteSession as SDKSession

from tests.sqlite.sqlite_support import contents, raw_rows, user
from turnstore import ConfigurationError
from turnstore.sqlite import SQLiteSession, SQLiteStore


@pytest.mark.parametrize(
    "name",
    ["", "1st", "has-dash", 'x"; DROP TABLE t; --', "a" * 64, "naïve", "sqlite_master", 42],
)
def test_a_bad_table_name_is_refused(db_file: str, name: Any) -> None:
    with pytest.raises(ConfigurationError):
        SQLiteSession("s", db_file, sessions_table=name)
    with pytest.raises(ConfigurationError):
        SQLiteStore(db_file, messages_table=name)


def test_a_messages_table_named_like_a_side_table_is_refused(db_file: str) -> None:
    with pytest.raises(ConfigurationError, match="collides"):
        SQLiteSession("s", db_file, sessions_table="conv", messages_table="conv_state")


async def test_custom_table_names_are_shared_with_the_sdk(db_file: str) -> None:
    async with SQLiteSession("s", db_file, sessions_table="conv", messages_table="msg") as ours:
        await ours.add_items([user("hi")])
    sdk = SDKSession("s", db_file, sessions_table="conv", messages_table="msg")
    try:
        assert contents(await sdk.get_items()) == ["hi"]
    finally:
        sdk.close()
    tables = {name for (name,) in raw_rows(db_file, "SELECT name FROM sqlite_master")}
    assert {"conv", "msg", "idx_msg_session_id", "conv_state"} <= tables
    assert "agent_sessions" not in tables


async def test_a_table_name_that_is_an_sql_keyword_works(db_file: str) -> None:
    async with SQLiteSession("s", db_file, sessions_table="order", messages_table="group") as s:
        await s.add_items([user("hi")])
        assert contents(await s.get_items()) == ["hi"]
