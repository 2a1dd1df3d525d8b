"""`sqlite://` URLs: paths, the shared in-memory database, options from the query string."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sqlite.sqlite_support import contents, user
from turnstore import ConfigurationError
from turnstore.sqlite import SQLiteSession, SQLiteStore, open_sqlite_store
from turnstore.store import open_store


async def test_a_relative_url_opens_a_file_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with open_sqlite_store("sqlite:///relative.db") as store:
        await store.session("s").add_items([user("hi")])
    assert (tmp_path / "relative.db").exists()


async def test_an_absolute_url_opens_that_file(tmp_path: Path) -> None:
    async with open_sqlite_store(f"sqlite:///{tmp_path}/absolute.db") as store:
        await store.session("s").add_items([user("hi")])
    assert (tmp_path / "absolute.db").exists()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
async def test_an_in_memory_url_is_one_database_shared_by_the_store(url: str) -> None:
    async with open_sqlite_store(url) as store:
        assert isinstance(store, SQLiteStore) and store.db_path == ":memory:"
        await store.session("a").add_items([user("hi")])
        assert contents(await store.session("a").get_items()) == ["hi"]


async def test_open_store_serves_sqlite_urls(db_file: str) -> None:
    store = open_store(f"sqlite:///{db_file}")
    async with store:
        assert isinstance(store, SQLiteStore)
        assert store.db_path == db_file


def test_query_parameters_set_options_and_keywords_win(db_file: str) -> None:
    store = open_sqlite_store(
        f"sqlite:///{db_file}?ttl=60&max_items=5&sessions_table=conv&messages_table=msg",
        max_items=7,
    )
    assert store.options.ttl == 60
    assert store.options.max_items == 7
    assert (store.sessions_table, store.messages_table) == ("conv", "msg")


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("sqlite:///x.db?colour=blue", "colour"),
        ("sqlite:///x.db?ttl=soon", "ttl"),
        ("sqlite://host/x.db", "host"),
        ("sqlite:///x.db?ttl=1&ttl=2", "twice"),
        ("sqlite:///x.db?sessions_table=bad-name", "sessions_table"),
    ],
)
def test_a_bad_url_is_refused_naming_the_problem(url: str, named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        open_sqlite_store(url)


def test_an_unknown_keyword_option_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="colour"):
        open_sqlite_store("sqlite://", colour="blue")


async def test_a_session_opens_from_a_url(db_file: str) -> None:
    async with SQLiteSession.from_url("s", f"sqlite:///{db_file}?max_items=1") as session:
        await session.add_items([user("a"), user("b")])
        assert contents(await session.get_items()) == ["b"]
        assert session.db_path == db_file
