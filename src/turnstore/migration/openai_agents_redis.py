"""Keys of openai-agents-redis: hash `agent_session:{id}`, list `agent_messages:{id}`."""

from __future__ import annotations

from typing import Any

from .base import PlannedSession, SourceSession
from .redis_keys import RedisKeysLayout, _glob_escape, _seconds, _text

__all__ = ["OpenAgentsRedisLayout"]


class OpenAgentsRedisLayout(RedisKeysLayout):
    """`?session_prefix=...&messages_prefix=...` name other prefixes."""

    name = "openai-agents-redis"
    layout_params = ("session_prefix", "messages_prefix")

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.session_prefix = self.params.get("session_prefix") or "agent_session"
        self.messages_prefix = self.params.get("messages_prefix") or "agent_messages"

    async def plan(self) -> list[PlannedSession]:
        session_head = f"{self.session_prefix}:".encode()
        messages_head = f"{self.messages_prefix}:".encode()
        ids: dict[bytes, None] = {}
        async for key in self.scan(f"{_glob_escape(self.session_prefix)}:*", "hash"):
            ids[key[len(session_head) :]] = None
        # A list whose hash expired or was never written: the package read it all the same.
        async for key in self.scan(f"{_glob_escape(self.messages_prefix)}:*", "list"):
            ids[key[len(messages_head) :]] = None
        raw_ids = list(ids)
        calls: list[tuple[str, tuple[Any, ...]]] = []
        for raw in raw_ids:
            calls.append(("HGET", (session_head + raw, "updated_at")))
            calls.append(("LLEN", (messages_head + raw,)))
        replies = await self.pipelined(calls)
        return [
            PlannedSession(
                _text(raw),
                int(count),
                _seconds(updated) or 0.0,
                locator=(session_head + raw, messages_head + raw),
            )
            for raw, updated, count in zip(raw_ids, replies[::2], replies[1::2], strict=True)
        ]

    async def read(self, planned: PlannedSession) -> SourceSession | None:
        hash_key, list_key = planned.locator
        return await self.read_keys(planned.session_id, hash_key, list_key)
