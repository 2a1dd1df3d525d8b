"""Self-test of the real redis-server helpers in tests/servers.py."""

from __future__ import annotations

import os
import socket
import time

import pytest
import redis
import redis.cluster
import redis.sentinel
from redis.backoff import NoBackoff
from redis.retry import Retry

try:
    from tests.servers import (
        PORT_MAX,
        start_cluster,
        start_redis,
        start_sentinel,
    )
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from servers import (  # type: ignore[no-redef]
        PORT_MAX,
        start_cluster,
        start_redis,
        start_sentinel,
    )


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def test_standalone_ping_and_stop() -> None:
    server = start_redis()
    try:
        assert server.host == "127.0.0.1"
        assert 20000 <= server.port <= PORT_MAX
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        with server.client() as client:
            assert client.ping() is True
            client.set("k", "v")
            assert client.get("k") == b"v"
        config = redis.Redis.from_url(server.url)
        try:
            assert config.config_get("save")["save"] == ""
            assert config.config_get("appendonly")["appendonly"] == "no"
            assert config.config_get("dir")["dir"] == str(server.dir.resolve())
        finally:
            config.close()
        redis_pid = server.redis_pid
        assert redis_pid is not None
        assert (server.dir / "redis.log").exists()
    finally:
        server.stop()
    assert server.process.poll() is not None
    assert not os.path.exists(f"/proc/{redis_pid}") or _is_zombie(redis_pid)
    assert not _accepts(server.host, server.port)
    assert not server.dir.exists()
    server.stop()  # idempotent


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            data = fh.read()
    except OSError:
        return True
    return data[data.rfind(")") + 2] in "ZX"


def test_password_kill_and_restart_on_same_port() -> None:
    server = start_redis("--requirepass", "pw")
    restarted = None
    try:
        with server.client() as client:
            assert client.ping() is True
        anonymous = server.client(password=None, retry=Retry(NoBackoff(), 0))
        with anonymous, pytest.raises(redis.AuthenticationError):
            anonymous.get("x")
        server.kill()
        assert server.process.poll() is not None
        assert not _accepts(server.host, server.port)
        restarted = start_redis(port=server.port)
        with restarted.client() as client:
            assert client.ping() is True
    finally:
        server.stop()
        if restarted is not None:
            restarted.stop()


def test_cluster() -> None:
    cluster = start_cluster()
    try:
        assert len(cluster.nodes) == 3
        assert cluster.url == "redis+cluster://" + ",".join(
            f"127.0.0.1:{n.port}" for n in cluster.nodes
        )
        assert cluster.startup_nodes == [("127.0.0.1", n.port) for n in cluster.nodes]
        rc = redis.cluster.RedisCluster(
            startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in cluster.startup_nodes]
        )
        try:
            rc.set("hello", "world")
            assert rc.get("hello") == b"world"
            keys = [f"{{{tag}}}x" for tag in "abcdefgh"]
            for key in keys:
                rc.set(key, key)
            for key in keys:
                assert rc.get(key) == key.encode()
        finally:
            rc.close()
        holders = set()
        for node in cluster.nodes:
            with node.client() as client:
                local = {k.decode() for k in client.keys("*")}  # this node's keys only
            if local & set(keys):
                holders.add(node.port)
        assert len(holders) >= 2
    finally:
        cluster.stop()
    assert all(node.process.poll() is not None for node in cluster.nodes)
    cluster.stop()  # idempotent


def test_sentinel() -> None:
    topo = start_sentinel("svc")
    try:
        assert topo.url == f"redis+sentinel://127.0.0.1:{topo.sentinel.port}/svc/0"
        sentinel = redis.sentinel.Sentinel(
            [(topo.sentinel.host, topo.sentinel.port)], socket_timeout=2.0
        )
        assert sentinel.discover_master("svc") == ("127.0.0.1", topo.master.port)
        assert sentinel.discover_slaves("svc") == [("127.0.0.1", topo.replica.port)]
        master = sentinel.master_for("svc")
        master.set("key", "value")
        assert master.get("key") == b"value"
        replica = sentinel.slave_for("svc")
        deadline = time.monotonic() + 10
        while replica.get("key") != b"value":
            assert time.monotonic() < deadline, "replica never saw the value"
            time.sleep(0.05)
        with topo.replica.client() as direct:
            assert direct.get("key") == b"value"
        master.close()
        replica.close()
        for s in sentinel.sentinels:
            s.close()
    finally:
        topo.stop()
    assert all(s.process.poll() is not None for s in (topo.master, topo.replica, topo.sentinel))
    topo.stop()  # idempotent
