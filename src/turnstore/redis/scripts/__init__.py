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


def load_script(name: str, prelude: str | None = "_common.lua") -> LuaScript:
    body = _read(f"{name}.lua")
    if prelude is None:
        return LuaScript(name, body)
    flags = ""
    if body.startswith("#!"):
        flags, body = body.split("\n", 1)
        flags += "\n"
    return LuaScript(name, flags + _read(prelude) + "\n" + body)


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
LOCK_ACQUIRE = load_script("lock_acquire", None)
LOCK_RENEW = load_script("lock_renew", None)
LOCK_RELEASE = load_script("lock_release", None)

# Bucket scripts: KEYS are one bucket's index and expiry sets (see _bucket.lua).
LIST_BUCKET = load_script("list_bucket", "_bucket.lua")
COUNT_BUCKET = load_script("count_bucket", "_bucket.lua")
PURGE_BUCKET = load_script("purge_bucket", "_bucket.lua")
EXPIRED_BUCKET = load_script("expired_bucket", "_bucket.lua")
IDS_BUCKET = load_script("ids_bucket", "_bucket.lua")
