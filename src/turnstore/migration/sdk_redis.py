"""Keys of the SDK's `RedisSession`: hash `{prefix}:{id}`, list `{prefix}:{id}:messages`."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError
from .base import PlannedSession, SourceSession
from .redis_keys import RedisKeysLayout, _glob_escape, _seconds, _text

__all__ = ["SdkRedisLayout"]


class SdkRedisLayout(RedisKeysLayout):
    """`?key_prefix=...` names the SDK's prefix (default `agents:session`)."""

    name = "sdk"
    layout_params = ("key_prefix",)
    default_prefix = "agents:session"

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        prefix = self.params.get("key_prefix", self.default_prefix)
        if not prefix:
            raise ConfigurationError("key_prefix must not be empty")
        self.prefix = prefix

    async def plan(self) -> list[PlannedSession]:
        hashes = [key async for key in self.scan(f"{_glob_escape(self.prefix)}:*", "hash")]
        calls: list[tuple[str, tuple[Any, ...]]] = []
        for key in hashes:
            calls.append(("HMGET", (key, "session_id", "updated_at")))
            calls.append(("LLEN", (key + b":messages",)))
        replies = await self.pipelined(calls)
        planned = []
        for key, (fields, count) in zip(
            hashes, zip(replies[::2], replies[1::2], strict=True), strict=True
        ):
            session_id, updated = fields
            if session_id is None:
                continue  # a hash under the prefix that RedisSession did not write
            planned.append(
                PlannedSession(
                    _text(session_id),
                    int(count),
                    _seconds(updated) or 0.0,
                    locator=(key, key + b":messages"),
                )
            )
        return planned

    async def read(self, planned: PlannedSession) -> SourceSession | None:
        hash_key, list_key = planned.locator
        return await self.read_keys(planned.session_id, hash_key, list_key)
