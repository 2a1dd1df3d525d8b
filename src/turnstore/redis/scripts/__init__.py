"""The Lua scripts: one readable `.lua` file per atomic step, run by SHA.

Each script is `_common.lua` (or `_bucket.lua`) followed by its own file; a file whose first
line declares flags (`#!lua flags=no-writes` for the scripts that only read, so they run on a
replica and during `CLIENT PAUSE WRITE`) keeps that line first. Scripts run with EVALSHA; the
transport sends a command again as EVAL when a server answers NOSCRIPT (see transport.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

__all__ = ["LuaScript", "as_eval", "load_script"]

EncodableArg = str | bytes | int | float

_BY_SHA: dict[bytes, LuaScript] = {}


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


class LuaScript:
    """A server-side script: its source, its SHA, and the command that runs it."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8")).hexdigest()
        self.sha_bytes = self.sha.encode()
        self.read_only = source.startswith("#!lua") and "no-writes" in source.split("\n", 1)[0]
        _BY_SHA[self.sha_bytes] = self

    def command(
        self, keys: Sequence[str | bytes], args: Sequence[EncodableArg], *, ro: bool = False
    ) -> tuple[Any, ...]:
        """The EVALSHA command that runs this script on `keys` with `args`.

        `ro`: a read-only script goes as EVALSHA_RO, which a server answers during `CLIENT
        PAUSE WRITE` and on a replica even when it does not know the script yet (it cannot
        read the flags of a script it does not have, so a plain EVALSHA would wait for the
        pause to end before answering NOSCRIPT).
        """
        name = "EVALSHA_RO" if ro and self.read_only else "EVALSHA"
        return (name, self.sha, len(keys), *keys, *args)

    def __repr__(self) -> str:
        return f"LuaScript({self.name!r}, sha={self.sha[:12]})"


def as_eval(command: Sequence[Any]) -> tuple[Any, ...]:
    """The EVAL (or EVAL_RO) form of an EVALSHA (or EVALSHA_RO) `command` of these scripts."""
    sha = command[1] if isinstance(command[1], bytes) else str(command[1]).encode()
    name = "EVAL_RO" if str(command[0]).upper().endswith("_RO") else "EVAL"
    return (name, _BY_SHA[sha].source, *command[2:])


#: What the session scripts start with: their KEYS, the index helpers, the shared steps.
SESSION_PRELUDE = ("_session.lua", "_index.lua", "_common.lua")
#: What the bucket scripts start with: one bucket's KEYS and liveness, the index helpers.
BUCKET_PRELUDE = ("_bucket.lua", "_index.lua")


def load_script(name: str, prelude: Sequence[str] = SESSION_PRELUDE) -> LuaScript:
    body = _read(f"{name}.lua")
    flags = ""
    if body.startswith("#!"):
        flags, body = body.split("\n", 1)
        flags += "\n"
    return LuaScript(name, flags + "".join(_read(part) + "\n" for part in prelude) + body)


APPEND = load_script("append")
POP = load_script("pop")
CLEAR = load_script("clear")
REPLACE = load_script("replace")
METADATA = load_script("metadata")
INFO = load_script("info")
SNAPSHOT = load_script("snapshot")
TOUCH = load_script("touch")
TAIL = load_script("tail")
TAIL_TOUCH = load_script("tail_touch")

# The session lock: KEYS is just the lock key.
LOCK_ACQUIRE = load_script("lock_acquire", ())
LOCK_RENEW = load_script("lock_renew", ())
LOCK_RELEASE = load_script("lock_release", ())

# Bucket scripts: KEYS are one bucket's index, expiry and indexed sets (see _bucket.lua).
PURGE_BUCKET = load_script("purge_bucket", BUCKET_PRELUDE)
EXPIRED_BUCKET = load_script("expired_bucket", BUCKET_PRELUDE)
IDS_BUCKET = load_script("ids_bucket", BUCKET_PRELUDE)
REINDEX_BUCKET = load_script("reindex_bucket", BUCKET_PRELUDE)

# Node scripts: every bucket of one server (a Cluster node: the buckets whose slots it
# serves) in one call. Cluster refuses a command whose declared keys span slots, so these
# get their buckets as arguments and carry the allow-cross-slot-keys flag (Redis 7.0,
# Valkey 7.2), which lets a script reach keys of several slots of its own node.
LIST_NODE = load_script("list_node", ())
COUNT_NODE = load_script("count_node", ())
DETAILS_NODE = load_script("details_node", ())
