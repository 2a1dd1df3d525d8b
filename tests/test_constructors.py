"""Options are written once and constructors run: every way to make a session calls __init__."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from tests.servers import RedisServer
from turnstore import (
    ConfigurationError,
    MemorySession,
    MemoryStore,
    RedisSession,
    RedisStore,
    SessionOptions,
    SQLiteSession,
    SQLiteStore,
    open_store,
)
from turnstore.conformance.items import turn

# What each constructor takes beyond the session options: its storage, its time budget and
# its plumbing.
BACKEND_KEYWORDS: dict[Any, set[str]] = {
    RedisSession: {
        "session_id",
        "client",
        "key_prefix",
        "timeout",
        "retries",
        "index_metadata",
        "connection",
        "owns_connection",
    },
    RedisStore: {"client", "key_prefix", "timeout", "retries", "index_metadata", "connection"},
    SQLiteSession: {
        "session_id",
        "db_path",
        "sessions_table",
        "messages_table",
        "connection",
        "owns_connection",
        "store",
    },
    SQLiteStore: {
        "db_path",
        "index_metadata",
        "sessions_table",
        "messages_table",
        "read_only",
        "busy_timeout",
    },
    MemorySession: {"session_id", "connection", "owns_connection"},
    MemoryStore: {"name", "index_metadata"},
}


@pytest.mark.parametrize("constructor", list(BACKEND_KEYWORDS), ids=lambda c: c.__name__)
def test_every_constructor_takes_exactly_the_session_options(constructor: Any) -> None:
    parameters = inspect.signature(constructor).parameters
    session_options = set(parameters) - BACKEND_KEYWORDS[constructor]
    assert session_options == SessionOptions.names()


@pytest.mark.parametrize("constructor", list(BACKEND_KEYWORDS), ids=lambda c: c.__name__)
def test_every_constructor_defaults_to_the_option_defaults(constructor: Any) -> None:
    parameters = inspect.signature(constructor).parameters
    defaults = SessionOptions()
    for name in SessionOptions.names():
        assert parameters[name].default == getattr(defaults, name), name


def store_url(scheme: str, tmp_path: Path, query: str) -> str:
    if scheme == "sqlite":
        return f"sqlite:///{tmp_path / 'options.db'}?{query}"
    if scheme == "redis":
        return f"redis://127.0.0.1:1/0?{query}"  # nothing is sent: no server needed
    return f"memory://?{query}"


SCHEMES = ["sqlite", "redis", "memory"]
QUERY = "ttl=60&refresh_ttl_on_read=false&max_turns=3&max_items=50&on_corrupt=raise"
FROM_QUERY = SessionOptions(
    ttl=60.0, refresh_ttl_on_read=False, max_turns=3, max_items=50, on_corrupt="raise"
)


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_url_options_reach_every_backends_sessions_alike(scheme: str, tmp_path: Path) -> None:
    store = open_store(store_url(scheme, tmp_path, QUERY))
    try:
        assert store.session("s").options == FROM_QUERY
    finally:
        await store.close()


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_keywords_win_over_the_url_on_every_backend(scheme: str, tmp_path: Path) -> None:
    store = open_store(store_url(scheme, tmp_path, QUERY), max_turns=7)
    try:
        session = store.session("s", ttl=5)
        assert (session.options.max_turns, session.options.ttl) == (7, 5)
    finally:
        await store.close()


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("where", ["query", "keyword", "override"])
async def test_an_unknown_option_is_named_on_every_backend(
    scheme: str, where: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match="colour"):
        if where == "query":
            open_store(store_url(scheme, tmp_path, "colour=blue"))
        elif where == "keyword":
            open_store(store_url(scheme, tmp_path, ""), colour="blue")
        else:
            store = open_store(store_url(scheme, tmp_path, ""))
            try:
                store.session("s", colour="blue")
            finally:
                await store.close()


# -- constructors that run ---------------------------------------------------------------


class TaggedRedis(RedisSession):
    def __init__(self, session_id: str, **options: Any) -> None:
        super().__init__(session_id, **options)
        self.tag = "made by __init__"


class TaggedSQLite(SQLiteSession):
    def __init__(self, session_id: str, *args: Any, **options: Any) -> None:
        super().__init__(session_id, *args, **options)
        self.tag = "made by __init__"


class TaggedMemory(MemorySession):
    def __init__(self, session_id: str, **options: Any) -> None:
        super().__init__(session_id, **options)
        self.tag = "made by __init__"


class TaggedRedisStore(RedisStore):
    session_class = TaggedRedis


class TaggedSQLiteStore(SQLiteStore):
    session_class = TaggedSQLite


class TaggedMemoryStore(MemoryStore):
    session_class = TaggedMemory


@pytest.fixture(params=["redis", "sqlite", "memory"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def tagged_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return f"{server.url}?key_prefix=tagged"
    return f"sqlite:///{tmp_path / 'tagged.db'}"


SESSION_CLASSES = {"redis": TaggedRedis, "sqlite": TaggedSQLite, "memory": TaggedMemory}


@pytest.mark.parametrize("url_kind", ["redis", "sqlite"])  # memory: no URL per session
async def test_from_url_runs_the_subclass_init(
    url_kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    kind = url_kind
    session = SESSION_CLASSES[kind].from_url("s", tagged_url(kind, request, tmp_path), ttl=60)
    try:
        assert isinstance(session, SESSION_CLASSES[kind])
        assert session.tag == "made by __init__"
        assert session.ttl == 60
    finally:
        await session.close()


def tagged_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if kind == "redis":
        return TaggedRedisStore.from_url(tagged_url(kind, request, tmp_path), max_turns=2)
    if kind == "sqlite":
        return TaggedSQLiteStore(tmp_path / "tagged.db", max_turns=2)
    return TaggedMemoryStore(max_turns=2)


async def test_store_session_runs_the_session_class_init(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    store = tagged_store(kind, request, tmp_path)
    try:
        session = store.session("s", ttl=30)
        assert type(session) is SESSION_CLASSES[kind]
        assert session.tag == "made by __init__"
        assert (session.max_turns, session.ttl) == (2, 30)
    finally:
        await store.close()


async def test_fork_runs_the_subclass_init_and_keeps_the_options(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    store = tagged_store(kind, request, tmp_path)
    try:
        source = store.session(f"fork-source-{kind}")
        await source.add_items(turn(0))
        fork = await source.fork(f"fork-copy-{kind}")
        assert type(fork) is SESSION_CLASSES[kind]
        assert fork.tag == "made by __init__"
        assert fork.options == source.options
        assert await fork.get_items() == turn(0)
        await store.delete_session(source.session_id)
        await store.delete_session(fork.session_id)
    finally:
        await store.close()


def test_no_constructor_is_bypassed_with_new() -> None:
    sources = Path(__file__).parent.parent / "src" / "turnstore"
    offenders = [
        str(path.relative_to(sources))
        for path in sources.rglob("*.py")
        if "__new__(" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
