"""`RedisSessionManager`: the seed proposal's names over `RedisStore` (SPEC section 2)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.backends import unique_id
from tests.servers import ClusterTopology, RedisServer
from turnstore import RedisSessionManager, SessionClosedError
from turnstore.conformance.items import user

ManagerFactory = Callable[..., RedisSessionManager]


@pytest.fixture
async def make_manager(redis_server: RedisServer) -> AsyncIterator[ManagerFactory]:
    """Managers on the test server, each under a key prefix of its own unless given one."""
    made: list[RedisSessionManager] = []

    def make(url: str | None = None, **options: Any) -> RedisSessionManager:
        if url is None:
            options.setdefault("key_prefix", unique_id("m"))
        manager = RedisSessionManager(url or redis_server.url, **options)
        made.append(manager)
        return manager

    yield make
    for manager in made:
        await manager.close()


async def write(manager: RedisSessionManager, *session_ids: str, **options: Any) -> None:
    for session_id in session_ids:
        await manager.get_session(session_id, **options).add_items([user(session_id)])


async def expires_at(manager: RedisSessionManager, session_id: str) -> Any:
    info = await manager.store.get_info(session_id)
    assert info is not None
    return info.expires_at


# -- get_session -------------------------------------------------------------------------------


async def test_sessions_share_the_managers_pool(make_manager: ManagerFactory) -> None:
    manager = make_manager(max_connections=5)
    first, second = manager.get_session("a"), manager.get_session("b")
    assert first.client is second.client is manager.store.client
    pool = manager.store.client.connection_pool
    assert isinstance(pool, aioredis.BlockingConnectionPool)
    assert pool.max_connections == 5
    await first.add_items([user("hi")])
    assert await manager.get_session("a").get_items() == [user("hi")]


async def test_the_pool_holds_twenty_connections_by_default(make_manager: ManagerFactory) -> None:
    assert make_manager().store.client.connection_pool.max_connections == 20


async def test_the_default_ttl_applies_to_every_session(make_manager: ManagerFactory) -> None:
    manager = make_manager(default_ttl=60)
    session = manager.get_session("a")
    assert session.ttl == 60
    await session.add_items([user("hi")])
    assert await expires_at(manager, "a") is not None
    assert 0 < await manager.store.client.pttl(session.keys.items) <= 60_000


async def test_a_session_ttl_overrides_the_default(make_manager: ManagerFactory) -> None:
    manager = make_manager(default_ttl=60)
    session = manager.get_session("a", ttl=5)
    assert session.ttl == 5
    await session.add_items([user("hi")])
    assert 0 < await manager.store.client.pttl(session.keys.items) <= 5_000


async def test_ttl_zero_means_no_expiry_even_with_a_default(make_manager: ManagerFactory) -> None:
    manager = make_manager(default_ttl=60)
    session = manager.get_session("forever", ttl=0)
    assert session.ttl is None
    await session.add_items([user("hi")])
    assert await expires_at(manager, "forever") is None
    assert await manager.store.client.pttl(session.keys.items) == -1


async def test_without_a_default_ttl_sessions_never_expire(make_manager: ManagerFactory) -> None:
    manager = make_manager()
    await write(manager, "a")
    assert manager.get_session("a").ttl is None
    assert await expires_at(manager, "a") is None


async def test_a_default_ttl_of_zero_means_no_expiry(
    make_manager: ManagerFactory, redis_server: RedisServer
) -> None:
    manager = make_manager(f"{redis_server.url}?ttl=60&key_prefix={unique_id('m')}", default_ttl=0)
    assert manager.get_session("a").ttl is None


async def test_options_left_unset_come_from_the_url(
    make_manager: ManagerFactory, redis_server: RedisServer
) -> None:
    prefix = unique_id("m")
    manager = make_manager(
        f"{redis_server.url}?ttl=60&key_prefix={prefix}&max_connections=7&max_turns=1"
    )
    session = manager.get_session("a")
    assert (session.ttl, session.key_prefix, session.max_turns) == (60, prefix, 1)
    assert manager.store.client.connection_pool.max_connections == 7


async def test_keyword_options_win_over_the_url(
    make_manager: ManagerFactory, redis_server: RedisServer
) -> None:
    prefix = unique_id("m")
    manager = make_manager(
        f"{redis_server.url}?ttl=60&key_prefix=from-url&max_connections=7",
        default_ttl=30,
        key_prefix=prefix,
        max_connections=3,
        max_items=10,
    )
    session = manager.get_session("a")
    assert (session.ttl, session.key_prefix, session.max_items) == (30, prefix, 10)
    assert manager.store.client.connection_pool.max_connections == 3


# -- list_sessions -----------------------------------------------------------------------------


async def test_list_sessions_returns_every_id_sorted(make_manager: ManagerFactory) -> None:
    manager = make_manager()
    assert await manager.list_sessions() == []
    await write(manager, "charlie", "alpha", "bravo")
    assert await manager.list_sessions() == ["alpha", "bravo", "charlie"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("user-*", ["user-1", "user-12", "user-2"]),
        ("user-?", ["user-1", "user-2"]),
        ("user-[12]", ["user-1", "user-2"]),
        ("*:*", ["team:a"]),
        ("[*]", ["*"]),
        ("{x}", ["{x}"]),
        ("nobody*", []),
    ],
)
async def test_list_sessions_filters_ids_with_a_glob(
    make_manager: ManagerFactory, pattern: str, expected: list[str]
) -> None:
    manager = make_manager()
    await write(manager, "user-1", "user-2", "user-12", "team:a", "*", "{x}", "User-3")
    assert await manager.list_sessions(pattern) == expected


async def test_list_sessions_of_a_large_store_is_complete(make_manager: ManagerFactory) -> None:
    manager = make_manager()
    ids = [f"s{n:04d}" for n in range(1_200)]
    store = manager.store
    await asyncio.gather(*(store.session(i).add_items([user(i)]) for i in ids))
    assert await manager.list_sessions() == ids


async def test_expired_sessions_are_not_listed(make_manager: ManagerFactory) -> None:
    manager = make_manager()
    await write(manager, "lasting")
    await write(manager, "brief", ttl=0.3)
    assert await manager.list_sessions() == ["brief", "lasting"]
    await asyncio.sleep(0.6)
    assert await manager.list_sessions() == ["lasting"]


async def test_deleted_sessions_are_not_listed(make_manager: ManagerFactory) -> None:
    manager = make_manager()
    await write(manager, "a", "b")
    await manager.delete_session("a")
    assert await manager.list_sessions() == ["b"]


# -- delete_session ----------------------------------------------------------------------------


async def test_delete_session_reports_whether_it_existed(make_manager: ManagerFactory) -> None:
    manager = make_manager()
    await write(manager, "a")
    assert await manager.delete_session("a") is True
    assert await manager.delete_session("a") is False
    assert await manager.delete_session("never-written") is False
    assert await manager.get_session("a").get_items() == []


# -- close -------------------------------------------------------------------------------------


async def test_close_stops_the_manager_and_its_sessions(make_manager: ManagerFactory) -> None:
    manager = make_manager()
    session = manager.get_session("a")
    await session.add_items([user("hi")])
    await manager.close()
    with pytest.raises(SessionClosedError):
        manager.get_session("b")
    with pytest.raises(SessionClosedError):
        await session.get_items()
    with pytest.raises(SessionClosedError):
        await manager.list_sessions()
    await manager.close()  # idempotent


async def test_async_with_closes_the_manager(redis_server: RedisServer) -> None:
    async with RedisSessionManager(redis_server.url, key_prefix=unique_id("m")) as manager:
        await write(manager, "a")
        assert await manager.list_sessions() == ["a"]
    with pytest.raises(SessionClosedError):
        await manager.delete_session("a")


# -- cluster -----------------------------------------------------------------------------------


async def test_the_manager_works_on_a_cluster_url(redis_cluster: ClusterTopology) -> None:
    async with RedisSessionManager(
        redis_cluster.url, key_prefix=unique_id("m"), default_ttl=60, max_connections=4
    ) as manager:
        ids = [f"user-{n:02d}" for n in range(40)]  # spread over every node
        await asyncio.gather(*(write(manager, i) for i in ids))
        await write(manager, "forever", ttl=0)
        assert await manager.list_sessions("user-*") == ids
        assert await expires_at(manager, "user-00") is not None
        assert await expires_at(manager, "forever") is None
        assert await manager.delete_session("user-00") is True
        assert await manager.delete_session("user-00") is False
        assert (await manager.list_sessions())[:2] == ["forever", "user-01"]
