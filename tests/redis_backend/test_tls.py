"""TLS: `rediss://` stores and a TLS-only Redis Cluster, against servers started with
certificates generated for this run (a CA, a server certificate it signed, and an unrelated
CA that must be refused).

"A clear error" for a refused certificate means: a redis `ConnectionError` (what callers
already handle for an unreachable server), naming the address and saying that certificate
verification failed, raised at once rather than after the retries meant for a failover.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from tests.backends import unique_id
from tests.servers import (
    ClusterTopology,
    RedisServer,
    TLSFiles,
    make_tls_files,
    start_cluster,
    start_redis_tls,
)
from turnstore import BackendError, ConfigurationError, RedisStore, open_store
from turnstore.conformance.items import turn

#: A refused certificate is reported well before the ~6 s that retrying it took.
FAIL_FAST_SECONDS = 2.0


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(tls_files: TLSFiles) -> Iterator[RedisServer]:
    server = start_redis_tls(tls=tls_files)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tls_cluster(tls_files: TLSFiles) -> Iterator[ClusterTopology]:
    cluster = start_cluster(3, tls=tls_files)
    try:
        yield cluster
    finally:
        cluster.stop()


def with_query(url: str, **params: str | Path) -> str:
    query = "&".join(f"{name}={quote(str(value), safe='/')}" for name, value in params.items())
    return f"{url}?{query}"


@pytest.fixture
async def tls_store(tls_server: RedisServer, tls_files: TLSFiles) -> AsyncIterator[RedisStore]:
    store = RedisStore.from_url(
        with_query(tls_server.url, ssl_ca_certs=tls_files.ca_cert, key_prefix=unique_id("tls"))
    )
    try:
        yield store
    finally:
        await store.close()


async def test_a_rediss_store_round_trips_items_and_lists_sessions(
    tls_store: RedisStore,
) -> None:
    session = tls_store.session(unique_id())
    await session.add_items(turn(0))
    await session.add_items(turn(1))
    assert await session.get_items() == turn(0) + turn(1)
    assert await session.pop_item() == turn(1)[-1]
    listed = await tls_store.list_sessions()
    assert [info.session_id for info in listed.sessions] == [session.session_id]
    assert await tls_store.count_sessions() == 1


def test_the_server_really_refuses_plain_connections(tls_server: RedisServer) -> None:
    plain = tls_server.client(ssl=False, retry=Retry(NoBackoff(), 0))
    with plain, pytest.raises(RedisConnectionError):
        plain.ping()


async def test_a_server_certificate_from_another_ca_fails_fast_and_clearly(
    tls_server: RedisServer, tls_files: TLSFiles
) -> None:
    store = RedisStore.from_url(with_query(tls_server.url, ssl_ca_certs=tls_files.other_ca_cert))
    started = time.monotonic()
    try:
        with pytest.raises(BackendError, match="certificate was refused") as caught:
            await store.session(unique_id()).add_items(turn(0))
    finally:
        await store.close()
    assert time.monotonic() - started < FAIL_FAST_SECONDS
    message = str(caught.value)
    assert "certificate verify failed" in message
    assert f"{tls_server.host}:{tls_server.port}" in message


async def test_ssl_cert_reqs_none_connects_without_a_ca(tls_server: RedisServer) -> None:
    store = open_store(with_query(tls_server.url, ssl_cert_reqs="none"))
    try:
        session = store.session(unique_id())
        await session.add_items(turn(0))
        assert await session.get_items() == turn(0)
    finally:
        await store.close()


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0?ssl_ca_certs=/tmp/ca.pem",
        "rediss://127.0.0.1:6379/0?ssl=false",
        "unix:///tmp/redis.sock?ssl=true",
        "redis+cluster://127.0.0.1:7000?ssl_ca_path=/etc/ssl/certs",
    ],
)
def test_tls_options_that_cannot_apply_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        RedisStore.from_url(url)


# -- cluster ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tls_query", ["ca", "ssl=true"])
async def test_a_tls_cluster_store_round_trips_items_and_lists_sessions(
    tls_cluster: ClusterTopology, tls_files: TLSFiles, tls_query: str
) -> None:
    # An ssl_* option turns TLS on for redis+cluster://; ssl=true does it without a CA file.
    params: dict[str, str | Path] = (
        {"ssl_ca_certs": tls_files.ca_cert}
        if tls_query == "ca"
        else {"ssl": "true", "ssl_cert_reqs": "none"}
    )
    store = RedisStore.from_url(with_query(tls_cluster.url, key_prefix=unique_id("tls"), **params))
    try:
        ids = [unique_id() for _ in range(12)]  # over several shards
        for session_id in ids:
            await store.session(session_id).add_items(turn(0))
        for session_id in ids:
            assert await store.session(session_id).get_items() == turn(0)
        listed = await store.list_sessions()
        assert sorted(info.session_id for info in listed.sessions) == sorted(ids)
        assert await store.count_sessions() == len(ids)
    finally:
        await store.close()


async def test_a_tls_cluster_with_another_ca_fails_clearly(
    tls_cluster: ClusterTopology, tls_files: TLSFiles
) -> None:
    store = RedisStore.from_url(with_query(tls_cluster.url, ssl_ca_certs=tls_files.other_ca_cert))
    try:
        with pytest.raises(BackendError, match="certificate verify failed"):
            await store.ping()
    finally:
        await store.close()
