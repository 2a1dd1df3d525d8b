"""The Lua scripts: one readable `.lua` file per atomic step, run by SHA.

Each script is `_common.lua` followed by its own file. It runs with EVALSHA; a server that
does not know it (restarted, failed over, a new Cluster node) answers NOSCRIPT, and the call is
repeated once with EVAL, which also caches the script on that server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from ..connection import AnyRedis, ClientSource
from ..lane import Lane

__all__ = ["LuaScript", "load_script"]

EncodableArg = str | bytes | int | float


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


class LuaScript:
    """A server-side script, called with the session's keys and arguments."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8")).hexdigest()
        self._sha_bytes = self.sha.encode()

    async def __call__(
        self, client: AnyRedis, keys: Sequence[str | bytes], args: Sequence[EncodableArg]
    ) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)

    async def on_lane(
        self, lane: Lane, keys: Sequence[str | bytes], args: Sequence[EncodableArg]
    ) -> Any:
        """The same call, sent on a direct lane."""
        reply = (await lane.execute(((b"EVALSHA", self._sha_bytes, len(keys), *keys, *args),)))[0]
        if isinstance(reply, NoScriptError):
            return await lane.call(b"EVAL", self.source, len(keys), *keys, *args)
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    async def run(
        self, source: ClientSource, keys: Sequence[str | bytes], args: Sequence[EncodableArg]
    ) -> Any:
        """On the source's direct lane when it has one, else through its redis-py client."""
        lane = source.lane()
        if lane is not None:
            return await self.on_lane(lane, keys, args)
        return await self(await source.ready(), keys, args)

    def __repr__(self) -> str:
        return f"LuaScript({self.name!r}, sha={self.sha[:12]})"


def load_script(name: str, prelude: str | None = "_common.lua") -> LuaScript:
    body = _read(f"{name}.lua")
    return LuaScript(name, body if prelude is None else _read(prelude) + "\n" + body)


APPEND = load_script("append")
POP = load_script("pop")
CLEAR = load_script("clear")
REPLACE = load_script("replace")
METADATA = load_script("metadata")
INFO = load_script("info")
SNAPSHOT = load_script("snapshot")
TOUCH = load_script("touch")

# The session lock: KEYS is just the lock key.
LOCK_ACQUIRE = load_script("lock_acquire", None)
LOCK_RENEW = load_script("lock_renew", None)
LOCK_RELEASE = load_script("lock_release", None)

# Bucket scripts: KEYS are one bucket's index and expiry sets (see _bucket.lua).
LIST_BUCKET = load_script("list_bucket", "_bucket.lua")
COUNT_BUCKET = load_script("count_bucket", "_bucket.lua")
PURGE_BUCKET = load_script("purge_bucket", "_bucket.lua")
EXPIRED_BUCKET = load_script("expired_bucket", "_bucket.lua")
IDS_BUCKET = load_script("ids_bucket", "_bucket.lua")
