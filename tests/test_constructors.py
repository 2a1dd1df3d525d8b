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
    RedisSessionManager,
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


def named_parameters(constructor: Any) -> dict[str, inspect.Parameter]:
    """The parameters a caller names (not the `**unknown` that refuses every other name)."""
    parameters = inspect.signature(constructor).parameters
    return {n: p for n, p in parameters.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}


@pytest.mark.parametrize("constructor", list(BACKEND_KEYWORDS), ids=lambda c: c.__name__)
def test_every_constructor_takes_exactly_the_session_options(constructor: Any) -> None:
    session_options = set(named_parameters(constructor)) - BACKEND_KEYWORDS[constructor]
    assert session_options == SessionOptions.names()


@pytest.mark.parametrize("constructor", list(BACKEND_KEYWORDS), ids=lambda c: c.__name__)
def test_every_constructor_defaults_to_the_option_defaults(constructor: Any) -> None:
    parameters = named_parameters(constructor)
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


# Every way to spell an option (in every URL, and as a keyword) is read from the one
# definition in SessionOptions: a value of each option, as a query writes it and as read.
URL_SPELLINGS: dict[str, tuple[str, Any]] = {
    "ttl": ("90", 90.0),
    "refresh_ttl_on_read": ("no", False),
    "max_turns": ("4", 4),
    "max_items": ("12", 12),
    "on_corrupt": ("raise", "raise"),
    "max_item_bytes": ("4096", 4096),
}
KEYWORD_ONLY = {"session_settings"}  # an SDK object: no text spells it


def test_every_session_option_but_the_sdk_settings_has_a_url_spelling() -> None:
    assert set(URL_SPELLINGS) == SessionOptions.names() - KEYWORD_ONLY


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("name", sorted(URL_SPELLINGS))
async def test_every_url_option_reaches_the_sessions_of_every_backend(
    scheme: str, name: str, tmp_path: Path
) -> None:
    text, value = URL_SPELLINGS[name]
    store = open_store(store_url(scheme, tmp_path, f"{name}={text}"))
    try:
        assert getattr(store.session("s").options, name) == value
    finally:
        await store.close()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_keyword_only_option_in_a_url_says_to_pass_it_as_a_keyword(
    scheme: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match="'session_settings' cannot be set in a URL"):
        open_store(store_url(scheme, tmp_path, "session_settings=limit"))


# A mistyped option is refused the same way wherever it is written: one routine, one message,
# naming the option, the closest one, and where it was given.
TYPO = r"^unknown option 'ttll' \(did you mean 'ttl'\?\) in "


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_mistyped_query_option_is_refused_naming_it_and_the_url(
    scheme: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match=TYPO + "'(redis|sqlite|memory):"):
        open_store(store_url(scheme, tmp_path, "ttll=5"))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_mistyped_keyword_of_open_store_is_refused_naming_it(scheme: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=TYPO):
        open_store(store_url(scheme, tmp_path, ""), ttll=5)


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_a_mistyped_override_of_store_session_is_refused_naming_it(
    scheme: str, tmp_path: Path
) -> None:
    store = open_store(store_url(scheme, tmp_path, ""))
    try:
        with pytest.raises(ConfigurationError, match=TYPO + r"\w+Store\.session\("):
            store.session("s", ttll=5)
    finally:
        await store.close()


def unconnected_client() -> Any:
    import redis.asyncio

    return redis.asyncio.Redis(host="127.0.0.1", port=1)  # never used: nothing is sent


CONSTRUCTORS: dict[str, Any] = {
    "RedisSession": lambda: RedisSession("s", client=unconnected_client(), ttll=5),
    "RedisStore": lambda: RedisStore(unconnected_client(), ttll=5),
    "SQLiteSession": lambda: SQLiteSession("s", ttll=5),
    "SQLiteStore": lambda: SQLiteStore(":memory:", ttll=5),
    "MemorySession": lambda: MemorySession("s", ttll=5),
    "MemoryStore": lambda: MemoryStore(ttll=5),
    "RedisSession.from_url": lambda: RedisSession.from_url("s", "redis://127.0.0.1:1", ttll=5),
    "RedisStore.from_url": lambda: RedisStore.from_url("redis://127.0.0.1:1", ttll=5),
    "SQLiteSession.from_url": lambda: SQLiteSession.from_url("s", "sqlite://", ttll=5),
    "RedisSessionManager": lambda: RedisSessionManager("redis://127.0.0.1:1", ttll=5),
}


@pytest.mark.parametrize("call", list(CONSTRUCTORS))
def test_a_mistyped_keyword_of_every_constructor_is_a_configuration_error(call: str) -> None:
    # Not Python's bare TypeError: the same error and message as in a URL.
    with pytest.raises(ConfigurationError, match=TYPO):
        CONSTRUCTORS[call]()


def test_every_unknown_name_is_listed_and_only_close_ones_get_a_suggestion() -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_store("memory://?colour=blue&max_turn=3")
    assert str(caught.value) == (
        "unknown options 'colour', 'max_turn' (did you mean 'max_turns'?) "
        "in 'memory://?colour=blue&max_turn=3'"
    )


def test_a_password_in_the_url_is_masked_in_the_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_store("redis://user:hunter2@127.0.0.1:1/0?ttll=5")
    assert "hunter2" not in str(caught.value)
    assert "'redis://user:***@127.0.0.1:1/0?ttll=5'" in str(caught.value)


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
