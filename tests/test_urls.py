"""`open_store` URLs (SPEC section 2, "URLs"): every form, options from the query string and
keywords, errors that name what is wrong, and a password that never shows."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import tempfile
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import SSLConnection
from redis.exceptions import AuthenticationError, RedisClusterException, RedisError

from tests.backends import unique_id
from tests.servers import ClusterTopology, RedisServer, SentinelTopology, start_redis
from turnstore import (
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    RedisSession,
    RedisSessionManager,
    RedisStore,
    SQLiteStore,
    open_store,
)
from turnstore.conformance.items import assistant, user
from turnstore.redis.urls import parse_redis_url
from turnstore.urls import mask_url

#: The default user's password of `auth_server`, and its ACL users.
DEFAULT_PASSWORD = "pw"
ALICE_PASSWORD = "Alice-Sesame-42"
#: A password holding every character a URL gives a meaning to.
BOB_PASSWORD = "B0b:p@ss/w%rd#?x"
SECRET = "Sesame-Secret-7391"


def prefixed(url: str, **params: Any) -> str:
    """`url` with a unique key prefix (the servers are shared by the whole run) and `params`."""
    query = "&".join(f"{k}={v}" for k, v in {"key_prefix": unique_id("u"), **params}.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def auth_server() -> Iterator[RedisServer]:
    """`--requirepass pw`, plus ACL users alice and bob (bob's password needs encoding)."""
    acl = ("~*", "&*", "+@all")
    server = start_redis(
        "--requirepass",
        DEFAULT_PASSWORD,
        *("--user", "alice", "on", f">{ALICE_PASSWORD}", *acl),
        *("--user", "bob", "on", f">{BOB_PASSWORD}", *acl),
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def unix_server() -> Iterator[tuple[RedisServer, str]]:
    directory = tempfile.mkdtemp(prefix="as-sock-")  # short: socket paths are ~100 bytes at most
    path = f"{directory}/redis.sock"
    server = start_redis("--unixsocket", path, "--unixsocketperm", "700")
    try:
        yield server, path
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def opened() -> AsyncIterator[list[Any]]:
    """Stores and managers a test opened; closed afterwards."""
    things: list[Any] = []
    yield things
    for thing in things:
        await thing.close()


async def round_trip(store: Any) -> None:
    session = store.session(unique_id())
    await session.add_items([user("hi"), assistant("hello")])
    assert await store.session(session.session_id).get_items() == [user("hi"), assistant("hello")]


# -- every form --------------------------------------------------------------------------------


async def test_a_relative_sqlite_url_is_a_file_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opened: list[Any]
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///relative.db")
    opened.append(store)
    assert isinstance(store, SQLiteStore)
    await round_trip(store)
    assert (tmp_path / "relative.db").is_file()


async def test_an_absolute_sqlite_url_is_that_file(tmp_path: Path, opened: list[Any]) -> None:
    path = tmp_path / "deep" / "absolute.db"
    path.parent.mkdir()
    url = f"sqlite:///{path}"
    assert url.startswith("sqlite:////")
    store = open_store(url)
    opened.append(store)
    await round_trip(store)
    assert path.is_file()


async def test_sqlite_in_memory_is_one_database_for_every_session_of_its_store(
    opened: list[Any],
) -> None:
    store, other = open_store("sqlite://"), open_store("sqlite://")
    opened += [store, other]
    await store.session("a").add_items([user("hi")])
    assert await store.session("a").get_items() == [user("hi")]
    assert [i.session_id for i in (await store.list_sessions()).sessions] == ["a"]
    assert await other.count_sessions() == 0  # another store: another database


async def test_a_redis_url_opens_that_database(
    redis_server: RedisServer, opened: list[Any]
) -> None:
    store = open_store(prefixed(f"redis://{redis_server.host}:{redis_server.port}/3"))
    opened.append(store)
    assert isinstance(store, RedisStore)
    await round_trip(store)
    with redis_server.client(db=3) as db3:
        assert db3.dbsize() > 0
        assert list(db3.scan_iter(f"{store.key_prefix}:*"))


async def test_a_password_in_the_url_authenticates(
    auth_server: RedisServer, opened: list[Any]
) -> None:
    address = f"{auth_server.host}:{auth_server.port}/0"
    store = open_store(prefixed(f"redis://:{DEFAULT_PASSWORD}@{address}"))
    anonymous = open_store(prefixed(f"redis://{address}"))
    opened += [store, anonymous]
    await round_trip(store)
    with pytest.raises(BackendError, match="refused the credentials") as caught:
        await anonymous.ping()
    assert isinstance(caught.value.__cause__, AuthenticationError)


async def test_an_acl_user_in_the_url_authenticates_as_that_user(
    auth_server: RedisServer, opened: list[Any]
) -> None:
    address = f"{auth_server.host}:{auth_server.port}/0"
    store = open_store(prefixed(f"redis://alice:{ALICE_PASSWORD}@{address}"))
    wrong = open_store(prefixed(f"redis://alice:not-hers@{address}"))
    opened += [store, wrong]
    await round_trip(store)
    assert await store.client.acl_whoami() in (b"alice", "alice")
    with pytest.raises(BackendError, match="refused the credentials") as caught:
        await wrong.ping()
    assert isinstance(caught.value.__cause__, AuthenticationError)


@pytest.mark.parametrize("encoded", [True, False], ids=["percent-encoded", "as-typed"])
async def test_a_password_with_url_characters_is_read_whole(
    auth_server: RedisServer, opened: list[Any], encoded: bool
) -> None:
    password = quote(BOB_PASSWORD, safe="") if encoded else BOB_PASSWORD
    url = f"redis://bob:{password}@{auth_server.host}:{auth_server.port}/0"
    assert parse_redis_url(url).password == BOB_PASSWORD
    store = open_store(url, key_prefix=unique_id("u"))
    opened.append(store)
    await round_trip(store)
    assert await store.client.acl_whoami() in (b"bob", "bob")


async def test_a_unix_socket_url_connects_through_the_socket(
    unix_server: tuple[RedisServer, str], opened: list[Any]
) -> None:
    _server, path = unix_server
    store = open_store(prefixed(f"unix://{path}?db=2"))
    opened.append(store)
    await round_trip(store)
    client = store.client
    assert isinstance(client, aioredis.Redis)
    assert client.connection_pool.connection_kwargs["path"] == path
    assert (await client.client_info())["db"] == 2


async def test_a_sentinel_url_reaches_the_master(
    redis_sentinel: SentinelTopology, opened: list[Any]
) -> None:
    store = open_store(prefixed(redis_sentinel.url))
    opened.append(store)
    assert isinstance(store, RedisStore)
    await round_trip(store)
    with redis_sentinel.master.client() as master:
        assert list(master.scan_iter(f"{store.key_prefix}:*"))


async def test_a_cluster_url_spreads_sessions_over_the_nodes(
    redis_cluster: ClusterTopology, opened: list[Any]
) -> None:
    store = open_store(prefixed(redis_cluster.url))
    opened.append(store)
    for _ in range(30):
        await round_trip(store)
    assert await store.count_sessions() == 30
    nodes_with_data = 0
    for node in redis_cluster.nodes:
        with node.client() as client:
            nodes_with_data += bool(list(client.scan_iter(f"{store.key_prefix}:*", count=1000)))
    assert nodes_with_data == len(redis_cluster.nodes)


async def test_without_a_url_open_store_reads_turnstore_url(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, opened: list[Any]
) -> None:
    prefix = unique_id("env")
    monkeypatch.setenv("TURNSTORE_URL", f"{redis_server.url}?key_prefix={prefix}")
    store = open_store()
    opened.append(store)
    assert isinstance(store, RedisStore)
    assert store.key_prefix == prefix
    await round_trip(store)


@pytest.mark.parametrize("environment", [None, ""], ids=["unset", "empty"])
async def test_without_a_url_or_environment_the_default_is_a_local_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opened: list[Any], environment: str | None
) -> None:
    monkeypatch.chdir(tmp_path)
    if environment is None:
        monkeypatch.delenv("TURNSTORE_URL", raising=False)
    else:
        monkeypatch.setenv("TURNSTORE_URL", environment)
    store = open_store()
    opened.append(store)
    assert isinstance(store, SQLiteStore)
    await round_trip(store)
    assert (tmp_path / "turnstore.db").is_file()


# -- options -----------------------------------------------------------------------------------

SESSION_QUERY = {
    "ttl": "3600",
    "max_turns": "20",
    "max_items": "500",
    "refresh_ttl_on_read": "false",
    "on_corrupt": "raise",
}
SESSION_VALUES = {
    "ttl": 3600,
    "max_turns": 20,
    "max_items": 500,
    "refresh_ttl_on_read": False,
    "on_corrupt": "raise",
}


async def test_query_options_reach_the_redis_store_its_pool_and_its_sessions(
    redis_server: RedisServer, opened: list[Any]
) -> None:
    url = f"{redis_server.url}?key_prefix=app&max_connections=7&socket_timeout=2.5&" + "&".join(
        f"{k}={v}" for k, v in SESSION_QUERY.items()
    )
    store = open_store(url)
    opened.append(store)
    assert isinstance(store, RedisStore)
    assert store.key_prefix == "app"
    session = store.session("s")
    for name, value in SESSION_VALUES.items():
        assert getattr(store.options, name) == value, name
        assert getattr(session.options, name) == value, name
    assert session.key_prefix == "app"
    pool = store.client.connection_pool
    assert isinstance(pool, aioredis.BlockingConnectionPool)
    assert pool.max_connections == 7
    # socket_timeout bounds each attempt of a call (the outage tests show it); it is not
    # redis-py's own socket timeout on the pool's connections.


async def test_query_options_act_on_the_stored_sessions(
    redis_server: RedisServer, opened: list[Any]
) -> None:
    store = open_store(prefixed(redis_server.url, ttl=60, max_items=3, max_turns=1))
    opened.append(store)
    session = store.session("s")
    await session.add_items([user("a"), assistant("A"), user("b"), assistant("B")])
    assert await session.get_items() == [user("b"), assistant("B")]  # max_turns=1
    assert await session.get_items(limit=10) == [assistant("A"), user("b"), assistant("B")]
    info = await store.get_info("s")
    assert info is not None and info.expires_at is not None  # ttl=60


async def test_ssl_query_options_reach_the_tls_connections(opened: list[Any]) -> None:
    store = open_store(
        "rediss://127.0.0.1:6380/0?ssl_cert_reqs=required&ssl_ca_certs=/etc/ca.pem"
        "&ssl_check_hostname=false"
    )
    opened.append(store)
    pool = store.client.connection_pool
    assert issubclass(pool.connection_class, SSLConnection)
    kwargs = pool.connection_kwargs
    assert kwargs["ssl_cert_reqs"] == "required"
    assert kwargs["ssl_ca_certs"] == "/etc/ca.pem"
    assert kwargs["ssl_check_hostname"] is False


async def test_a_default_redis_store_owns_a_blocking_pool_of_64(
    redis_server: RedisServer, opened: list[Any]
) -> None:
    store = open_store(redis_server.url)
    opened.append(store)
    pool = store.client.connection_pool
    assert isinstance(pool, aioredis.BlockingConnectionPool)
    assert pool.max_connections == 64


async def test_a_sentinel_store_holds_at_most_max_connections_and_callers_wait(
    redis_sentinel: SentinelTopology, opened: list[Any]
) -> None:
    name = unique_id("sized")
    sized = open_store(prefixed(redis_sentinel.url, max_connections=7, client_name=name))
    opened.append(sized)
    sessions = [sized.session(unique_id()) for _ in range(60)]
    await asyncio.gather(*(s.add_items([user("hi"), assistant("hello")]) for s in sessions))
    await asyncio.gather(*(s.get_items() for s in sessions))
    with redis_sentinel.master.client() as admin:
        named = [c for c in admin.client_list() if c.get("name") == name]
    assert 1 <= len(named) <= 7


async def test_a_cluster_store_sizes_each_node_pool_from_the_query(
    redis_cluster: ClusterTopology, opened: list[Any]
) -> None:
    store = open_store(prefixed(redis_cluster.url, max_connections=7))
    opened.append(store)
    assert await store.ping()
    nodes = store.client.get_nodes()
    assert len(nodes) == len(redis_cluster.nodes)
    assert {node.max_connections for node in nodes} == {7}


async def test_keyword_options_win_over_the_query(
    redis_server: RedisServer, tmp_path: Path, opened: list[Any]
) -> None:
    redis_store = open_store(
        f"{redis_server.url}?ttl=60&max_turns=2&key_prefix=query&max_connections=5",
        ttl=120,
        max_turns=None,
        key_prefix="keyword",
        max_connections=9,
    )
    sqlite_store = open_store(f"sqlite:///{tmp_path}/k.db?ttl=60&max_items=5", max_items=7)
    opened += [redis_store, sqlite_store]
    assert isinstance(redis_store, RedisStore)
    assert (redis_store.options.ttl, redis_store.options.max_turns) == (120, None)
    assert redis_store.key_prefix == "keyword"
    assert redis_store.client.connection_pool.max_connections == 9
    assert isinstance(sqlite_store, SQLiteStore)
    assert (sqlite_store.options.ttl, sqlite_store.options.max_items) == (60, 7)


# -- errors that name the problem --------------------------------------------------------------


@pytest.mark.parametrize("url", ["memcached://localhost:11211", "Mongo://x", "redis-cluster://h"])
def test_an_unknown_scheme_is_a_configuration_error_naming_it(url: str) -> None:
    scheme = url.split("://")[0].lower()
    with pytest.raises(ConfigurationError, match=f"'{scheme}'") as caught:
        open_store(url)
    assert "redis+cluster" in str(caught.value)  # and it lists what is known


@pytest.mark.parametrize("url", ["localhost:6379", "", "redis:/localhost"])
def test_a_string_that_is_no_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="not a store URL"):
        open_store(url)


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:6379/0?colour=blue",
        "rediss://localhost:6379/0?colour=blue",
        "unix:///tmp/redis.sock?colour=blue",
        "redis+sentinel://localhost:26379/mymaster?colour=blue",
        "redis+cluster://localhost:7000?colour=blue",
        "sqlite:///sessions.db?colour=blue",
    ],
)
def test_an_unknown_query_option_is_a_configuration_error_naming_it(url: str) -> None:
    with pytest.raises(ConfigurationError, match="colour"):
        open_store(url)


@pytest.mark.parametrize("url", ["redis://localhost:6379/0", "sqlite://"])
def test_an_unknown_keyword_option_is_a_configuration_error_naming_it(url: str) -> None:
    with pytest.raises(ConfigurationError, match="colour"):
        open_store(url, colour="blue")


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("ttl=soon", "ttl"),
        ("ttl=-5", "ttl"),
        ("max_turns=0", "max_turns"),
        ("max_items=many", "max_items"),
        ("refresh_ttl_on_read=maybe", "refresh_ttl_on_read"),
        ("on_corrupt=explode", "on_corrupt"),
        ("max_connections=lots", "max_connections"),
        ("max_connections=0", "max_connections"),
        ("socket_timeout=slow", "socket_timeout"),
        ("db=first", "db"),
        ("key_prefix=%7Bapp%7D", "key_prefix"),
    ],
)
def test_a_bad_query_value_is_a_configuration_error_naming_the_option(
    query: str, named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        open_store(f"redis://localhost:6379/0?{query}")


@pytest.mark.parametrize(
    ("keyword", "value"),
    [("ttl", "soon"), ("max_turns", 0), ("max_connections", 0), ("max_connections", "8")],
)
def test_a_bad_keyword_value_is_a_configuration_error_naming_the_option(
    keyword: str, value: Any
) -> None:
    with pytest.raises(ConfigurationError, match=keyword):
        open_store("redis://localhost:6379/0", **{keyword: value})


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("redis://localhost:port/0", "port"),
        ("redis://localhost:6379/first", "database"),
        ("redis://a:1,b:2/0", "several hosts"),
        ("redis+sentinel://localhost:26379", "service name"),
        ("redis+cluster://localhost:7000/1", "database 0"),
        ("unix://", "socket path"),
        ("redis://localhost:6379/0?ttl=1&ttl=2", "'ttl' given twice"),
    ],
)
def test_a_malformed_redis_url_is_a_configuration_error_saying_why(url: str, named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        open_store(url)


# -- the password never shows ------------------------------------------------------------------

PASSWORD_URLS = [
    f"redis://:{SECRET}@127.0.0.1:6379/0",
    f"redis://alice:{SECRET}@127.0.0.1:6379/0?ttl=60",
    f"redis://{SECRET}@127.0.0.1:6379/0",  # a lone userinfo is a password, as redis-py reads it
    f"rediss://alice:{SECRET}@127.0.0.1:6380/0",
    f"unix://:{SECRET}@/tmp/redis.sock?db=1",
    f"redis+sentinel://alice:{SECRET}@127.0.0.1:26379,127.0.0.1:26380/mymaster/0",
    f"redis+cluster://alice:{SECRET}@127.0.0.1:7000,127.0.0.1:7001",
    # Typed without percent-encoding: characters a URL gives a meaning to.
    f"redis://alice:{SECRET}/x@127.0.0.1:6379/0",
    f"redis://alice:{SECRET}@x@127.0.0.1:6379/0",
    f"redis://alice:{SECRET}#x@127.0.0.1:6379/0",
    f"redis://alice:{SECRET}?x@127.0.0.1:6379/0?ttl=60",
    f"redis://alice:{SECRET}:x@127.0.0.1:6379/0",
    f"redis://alice:{quote(SECRET + '/@#?', safe='')}@127.0.0.1:6379/0",
]


def assert_no_secret(*texts: object) -> None:
    for text in texts:
        assert SECRET not in str(text), text


def assert_error_keeps_it(error: BaseException) -> None:
    """Nothing of the error, its arguments or its chain shows the password."""
    assert_no_secret(str(error), repr(error), *error.args)
    assert_no_secret("".join(traceback.format_exception(error)))


@pytest.mark.parametrize("url", PASSWORD_URLS)
async def test_the_password_is_in_no_repr_or_str(url: str, opened: list[Any]) -> None:
    config = parse_redis_url(url)
    assert config.password is not None and config.password.startswith(SECRET)
    store = open_store(url)
    manager = RedisSessionManager(url)
    single = RedisSession.from_url("s", url)
    opened += [store, manager, single]
    objects = [config, store, store.session("s"), manager, manager.get_session("s"), single]
    objects += [store.client, getattr(store.client, "connection_pool", None)]
    for thing in objects:
        assert_no_secret(repr(thing), str(thing))
    assert_no_secret(mask_url(url))
    assert "***" in mask_url(url)


@pytest.mark.parametrize(
    ("url", "keywords"),
    [
        (f"redis://alice:{SECRET}@127.0.0.1:6379/0?colour=blue", {}),
        (f"redis://alice:{SECRET}@127.0.0.1:6379/0?ttl=soon", {}),
        (f"redis://alice:{SECRET}@127.0.0.1:6379/0?ttl=1&ttl=2", {}),
        (f"redis://alice:{SECRET}@127.0.0.1:port/0", {}),
        (f"redis://alice:{SECRET}@127.0.0.1:6379/zero", {}),
        (f"redis://alice:{SECRET}#x@127.0.0.1:port/0", {}),
        (f"redis://alice:{SECRET}?x@127.0.0.1:6379/0?colour=blue", {}),
        (f"redis+cluster://alice:{SECRET}@127.0.0.1:7000/2", {}),
        (f"redis://alice:{SECRET}@127.0.0.1:6379/0", {"colour": "blue"}),
        (f"redis://alice:{SECRET}@127.0.0.1:6379/0", {"max_connections": 0}),
        (f"memcached://alice:{SECRET}@127.0.0.1:11211", {}),
        (f"alice:{SECRET}@127.0.0.1:6379", {}),
        (f"redis://127.0.0.1:6379/0?ssl_password={SECRET}", {}),
    ],
)
def test_the_password_is_in_no_configuration_error(url: str, keywords: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_store(url, **keywords)
    assert_error_keeps_it(caught.value)


def unreachable_urls() -> list[str]:
    port = closed_port()
    return [
        f"redis://alice:{SECRET}@127.0.0.1:{port}/0",
        f"redis://:{SECRET}/x@127.0.0.1:{port}/0",
        f"unix://:{SECRET}@/nonexistent/turnstore.sock",
        f"redis+sentinel://alice:{SECRET}@127.0.0.1:{port}/mymaster",
        f"redis+cluster://alice:{SECRET}@127.0.0.1:{port}",
    ]


@pytest.mark.parametrize("url", unreachable_urls(), ids=lambda url: url.split(":")[0])
async def test_the_password_is_neither_in_a_connection_error_nor_logged(
    url: str, caplog: pytest.LogCaptureFixture, opened: list[Any]
) -> None:
    caplog.set_level(logging.DEBUG)
    store = open_store(url)
    opened.append(store)
    assert await store.ping() is False
    with pytest.raises(BackendUnavailableError) as caught:
        await store.session("s").get_items()
    assert isinstance(caught.value.__cause__, (RedisError, RedisClusterException, OSError))
    assert_error_keeps_it(caught.value)
    assert_no_secret(caplog.text, *(record.getMessage() for record in caplog.records))


async def test_a_refused_password_is_neither_in_the_error_nor_logged(
    auth_server: RedisServer, caplog: pytest.LogCaptureFixture, opened: list[Any]
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"redis://alice:{SECRET}@{auth_server.host}:{auth_server.port}/0"
    store = open_store(url)
    session = RedisSession.from_url("s", url)
    opened += [store, session]
    with pytest.raises(BackendError) as caught:
        await store.ping()
    assert_error_keeps_it(caught.value)
    with pytest.raises(BackendError) as caught:
        await session.add_items([user("hi")])
    assert_error_keeps_it(caught.value)
    assert_no_secret(caplog.text, *(record.getMessage() for record in caplog.records))


async def test_nothing_logged_while_connecting_shows_the_password(
    auth_server: RedisServer, caplog: pytest.LogCaptureFixture, opened: list[Any]
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"redis://alice:{ALICE_PASSWORD}@{auth_server.host}:{auth_server.port}/0"
    store = open_store(url, key_prefix=unique_id("u"), on_corrupt="skip")
    opened.append(store)
    session = store.session("s")
    await session.add_items([user("hi")])
    await store.client.rpush(session.keys.items, b"{not json")  # a skipped item logs a warning
    assert await session.get_items() == [user("hi")]
    assert caplog.records, "the skipped item should have been logged"
    assert ALICE_PASSWORD not in caplog.text
