"""What every command gets: the open store, where it lives, its time budget, where to write."""

from __future__ import annotations

import asyncio
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store import SessionStore, open_store
from ..urls import mask_url
from .render import Output

__all__ = [
    "DEFAULT_TIMEOUT",
    "CommandError",
    "Context",
    "UsageError",
    "read_only_options",
    "sqlite_file",
    "store_time_budget",
]

#: Seconds a command may go without progress (`--timeout`).
DEFAULT_TIMEOUT = 10.0


class CommandError(Exception):
    """A command failed for a reason the operator can act on: exit 1, message on stderr."""


class UsageError(Exception):
    """The command line asks for something that cannot work: exit 2, message on stderr."""


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def store_time_budget(url: str, seconds: float) -> dict[str, Any]:
    """The store options that give every call of the store at `url` the CLI's time budget.

    The one hand-off of `--timeout` to a store. SQLite: how long a call waits for another
    process's write lock. Redis: the store's `timeout`, the time one call may take in all,
    retries included (its attempts' `socket_timeout` defaults to the same or 5 s).
    """
    scheme = _scheme(url)
    if scheme == "sqlite":
        return {"busy_timeout": seconds}
    if scheme in ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster"):
        return {"timeout": seconds}
    return {}


def read_only_options(url: str) -> dict[str, Any]:
    """Options that open the store at `url` without writing to it, where the backend can."""
    return {"read_only": True} if _scheme(url) == "sqlite" else {}


def sqlite_file(store: SessionStore) -> Path | None:
    """The absolute database file of a SQLite store; None for memory or another backend."""
    # Duck-typed so that a Redis-only run never imports the SQLite backend.
    db_path = getattr(store, "db_path", None)
    if not isinstance(db_path, str) or db_path in ("", ":memory:"):
        return None
    return Path(db_path).expanduser().absolute()


@dataclass
class Context:
    """The store a command works on, how the operator named it, and the time left."""

    url: str
    #: True when `--url` was on the command line (so hints must repeat it).
    url_given: bool
    out: Output
    #: True for commands that only read: a SQLite file is opened read-only.
    read_only: bool = False
    #: Seconds without progress before the command is stopped (`--timeout`).
    timeout: float = DEFAULT_TIMEOUT
    json: bool = False
    #: The event loop time at which the command is stopped unless it makes progress.
    deadline: float = field(default=float("inf"))
    #: Names the store the command is waiting for (`migrate` has two), for the time-out
    #: message; None: the store at `url`.
    waiting_on: Callable[[], str] | None = None
    _store: SessionStore | None = field(default=None, repr=False)

    @property
    def store(self) -> SessionStore:
        """The store `url` names, opened on first use (`migrate` never opens it)."""
        if self._store is None:
            options = store_time_budget(self.url, self.timeout)
            if self.read_only:
                options.update(read_only_options(self.url))
            self._store = open_store(self.url, **options)
        return self._store

    def progress(self) -> None:
        """The command moved on (a session copied, a poll answered): its budget starts over."""
        self.deadline = asyncio.get_running_loop().time() + self.timeout

    def allow(self, seconds: float) -> None:
        """The next step may take `seconds` (more than the budget): a child process's start."""
        self.deadline = asyncio.get_running_loop().time() + max(seconds, self.timeout)

    async def aclose(self) -> None:
        if self._store is not None:
            await self._store.close()

    @property
    def shown_url(self) -> str:
        """The URL as it may be printed: any password replaced by `***`."""
        return mask_url(self.url)

    def waited_for(self) -> str:
        """The store the command is waiting for, as it may be printed."""
        return self.waiting_on() if self.waiting_on is not None else self.shown_url

    @property
    def database_file(self) -> Path | None:
        return sqlite_file(self.store)

    @property
    def is_memory(self) -> bool:
        return getattr(self.store, "db_path", None) in ("", ":memory:")

    def command(self, *words: str) -> str:
        """A command line that repeats `--url` when the operator gave one."""
        prefix = ["turnstore"]
        if self.url_given:
            prefix += ["--url", self.shown_url]
        return shlex.join([*prefix, *words])

    def missing_database(self) -> Path | None:
        """The SQLite file when it does not exist yet (read-only commands must not create it)."""
        path = self.database_file
        return path if path is not None and not os.path.exists(path) else None

    def missing_directory(self) -> Path | None:
        """The SQLite file's directory when it does not exist (a write would fail)."""
        path = self.database_file
        return path.parent if path is not None and not path.parent.is_dir() else None

    def require_directory(self) -> None:
        """`CommandError` when the SQLite file's directory does not exist.

        A missing file in an existing directory is an empty store not written yet; a
        missing directory is a mistyped path, which "no sessions" or "deleted 0" would hide.
        """
        folder = self.missing_directory()
        if folder is not None:
            raise CommandError(
                f"cannot open {self.database_file}: the directory {folder} does not exist"
            )
