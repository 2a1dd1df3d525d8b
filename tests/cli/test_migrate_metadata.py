"""`migrate` keeps metadata from every layout that has it, or says what it could not carry."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from pathlib import Path

import redis
from agents import SQLiteSession as SDKSession

from tests.cli.support import CONVERSATION, run_cli, seed, sqlite_url_for, stored_records
from tests.servers import RedisServer


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mixed_file(path: Path) -> None:
    """A file both the SDK and this package wrote to: one session each."""

    async def sdk_write() -> None:
        session = SDKSession("from-sdk", str(path))
        await session.add_items(CONVERSATION[:2])
        session.close()

    asyncio.run(sdk_write())
    seed(sqlite_url_for(path), [("from-us", CONVERSATION, {"user_id": "u1", "tier": "gold"})])


def destinations(redis_server: RedisServer, tmp_path: Path) -> dict[str, str]:
    return {
        "sqlite": sqlite_url_for(tmp_path / "copy.db"),
        "redis": f"{redis_server.url}?key_prefix=mm-{uuid.uuid4().hex[:8]}",
    }


def test_sdk_layout_keeps_the_metadata_this_package_wrote(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    source = tmp_path / "mixed.db"
    mixed_file(source)
    before = digest(source)
    for name, target in destinations(redis_server, tmp_path).items():
        result = run_cli(
            "migrate", "--from-layout", "sdk", sqlite_url_for(source), target, cwd=tmp_path
        )
        assert result.returncode == 0, (name, result.stderr)
        copied = stored_records(target)
        assert copied["from-us"].metadata == {"user_id": "u1", "tier": "gold"}
        assert copied["from-us"].items == CONVERSATION
        assert copied["from-sdk"].metadata == {}
        assert copied["from-sdk"].items == CONVERSATION[:2]
    assert digest(source) == before


def write_oar(url: str, prefix: str, fields: dict[str, bytes]) -> None:
    client = redis.Redis.from_url(url)
    try:
        now = str(time.time())
        client.hset(
            f"{prefix}_session:oar-1",
            mapping={"session_id": "oar-1", "created_at": now, "updated_at": now, **fields},
        )
        client.rpush(f"{prefix}_messages:oar-1", *(json.dumps(i) for i in CONVERSATION))
    finally:
        client.close()


def test_openai_agents_redis_hash_fields_become_metadata(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    prefix = f"oar{uuid.uuid4().hex[:6]}"
    write_oar(redis_server.url, prefix, {"user_id": b"u7", "channel": b"web"})
    source = f"{redis_server.url}?session_prefix={prefix}_session&messages_prefix={prefix}_messages"
    target = sqlite_url_for(tmp_path / "copy.db")
    result = run_cli(
        "migrate", "--from-layout", "openai-agents-redis", source, target, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    copied = stored_records(target)["oar-1"]
    assert copied.metadata == {"user_id": "u7", "channel": "web"}
    assert copied.items == CONVERSATION


def test_a_field_that_cannot_be_carried_is_named_and_exits_1(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    prefix = f"oar{uuid.uuid4().hex[:6]}"
    write_oar(redis_server.url, prefix, {"user_id": b"u7", "blob": b"\xff\xfe"})
    source = f"{redis_server.url}?session_prefix={prefix}_session&messages_prefix={prefix}_messages"
    target = sqlite_url_for(tmp_path / "copy.db")
    result = run_cli(
        "migrate", "--from-layout", "openai-agents-redis", source, target, cwd=tmp_path
    )
    assert result.returncode == 1
    assert (
        "turnstore: session 'oar-1': not carried: hash field 'blob' (not UTF-8 text); "
        "it stays in the source"
    ) in result.stderr
    assert "Problems: 1 part not carried" in result.stdout
    copied = stored_records(target)["oar-1"]
    assert copied.metadata == {"user_id": "u7"}  # the rest of the session is copied


def test_sdk_redis_hash_fields_become_metadata(redis_server: RedisServer, tmp_path: Path) -> None:
    prefix = f"sdk{uuid.uuid4().hex[:6]}:session"
    client = redis.Redis.from_url(redis_server.url)
    try:
        now = str(time.time())
        client.hset(
            f"{prefix}:s1",
            mapping={"session_id": "s1", "created_at": now, "updated_at": now, "team": "blue"},
        )
        client.rpush(f"{prefix}:s1:messages", *(json.dumps(i) for i in CONVERSATION))
    finally:
        client.close()
    target = sqlite_url_for(tmp_path / "copy.db")
    source = f"{redis_server.url}?key_prefix={prefix}"
    result = run_cli("migrate", "--from-layout", "sdk", source, target, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert stored_records(target)["s1"].metadata == {"team": "blue"}
