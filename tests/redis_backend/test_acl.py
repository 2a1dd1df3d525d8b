"""The least-privileged ACL user that docs/production.md recommends can do everything."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis.exceptions import NoPermissionError

from tests.servers import ClusterTopology, RedisServer, start_redis
from turnstore import BackendError, open_store

# Kept identical to the rule in docs/production.md.
ACL_RULE = (
    "on >s3cret ~app:* resetchannels -@all "
    "+@read +@write +@scripting +@connection +time -@dangerous"
)
CLUSTER_EXTRA = "+cluster|slots +cluster|shards +cluster|nodes"


@pytest.fixture(scope="module")
def acl_server() -> Iterator[RedisServer]:
    server = start_redis()
    try:
        server.client().execute_command("ACL", "SETUSER", "agents", *ACL_RULE.split())
        yield server
    finally:
        server.stop()


def test_the_documented_rule_is_the_one_tested() -> None:
    from pathlib import Path

    docs = (Path(__file__).parents[2] / "docs" / "production.md").read_text()
    assert f"ACL SETUSER agents {ACL_RULE}" in " ".join(docs.split())


async def test_a_least_privileged_user_runs_every_operation(acl_server: RedisServer) -> None:
    url = f"redis://agents:s3cret@127.0.0.1:{acl_server.port}/0?key_prefix=app&ttl=60"
    async with open_store(url) as store:
        session = store.session("u1")
        await session.add_items([{"role": "user", "content": "hi"}], idempotency_key="k")
        await session.update_metadata({"tenant": "t1"})
        assert await session.get_items() == [{"role": "user", "content": "hi"}]
        assert await session.pop_item() == {"role": "user", "content": "hi"}
        async with session.lock(timeout=1):
            await session.replace_items([{"role": "user", "content": "again"}])
        copy = await session.fork("u2")
        assert await copy.get_items() == [{"role": "user", "content": "again"}]
        page = await store.list_sessions(metadata={"tenant": "t1"})
        assert {info.session_id for info in page.sessions} == {"u1", "u2"}
        assert await store.count_sessions() == 2
        assert await store.purge_expired() == 0
        assert await store.delete_session("u2") is True
        await session.clear_session()
        assert await store.ping() is True


async def test_the_user_cannot_reach_keys_outside_its_prefix(acl_server: RedisServer) -> None:
    url = f"redis://agents:s3cret@127.0.0.1:{acl_server.port}/0?key_prefix=other"
    async with open_store(url) as store:
        with pytest.raises(BackendError, match="permission denied") as caught:
            await store.session("u1").add_items([{"role": "user", "content": "hi"}])
        assert isinstance(caught.value.__cause__, NoPermissionError)


async def test_on_a_cluster_the_user_also_needs_node_discovery(
    redis_cluster: ClusterTopology,
) -> None:
    for node in redis_cluster.nodes:
        node.client().execute_command(
            "ACL", "SETUSER", "agents-cluster", *ACL_RULE.split(), *CLUSTER_EXTRA.split()
        )
    hosts = ",".join(f"{h}:{p}" for h, p in redis_cluster.startup_nodes)
    url = f"redis+cluster://agents-cluster:s3cret@{hosts}?key_prefix=app"
    async with open_store(url) as store:
        sessions = [store.session(f"c{n}") for n in range(20)]
        for session in sessions:
            await session.add_items([{"role": "user", "content": session.session_id}])
        assert await store.count_sessions() == 20
        for session in sessions:
            assert await store.delete_session(session.session_id) is True
