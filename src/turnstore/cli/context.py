"""What every command gets: the open store, where it lives, and where to write."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..store import SessionStore, open_store
from ..urls import mask_url
from .render import Output

__all__ = ["CommandError", "Context", "UsageError", "sqlite_file"]


class CommandError(Exception):
    """A command failed for a reason the operator can act on: exit 1, message on stderr."""


class UsageError(Exception):
    """The command line asks for something that cannot work: exit 2, message on stderr."""


def sqlite_file(store: SessionStore) -> Path | None:
    """The absolute database file of a SQLite store; None for memory or another backend."""
    # Duck-typed so that a Redis-only run never imports the SQLite backend.
    db_path = getattr(store, "db_path", None)
    if not isinstance(db_path, str) or db_path in ("", ":memory:"):
        return None
    return Path(db_path).expanduser().absolute()


@dataclass
class Context:
    """The store a command works on and how the operator named it."""

    url: str
    #: True when `--url` was on the command line (so hints must repeat it).
    url_given: bool
    out: Output
    _store: SessionStore | None = field(default=None, repr=False)

    @property
    def store(self) -> SessionStore:
        """The store `url` names, opened on first use (`migrate` never opens it)."""
        if self._store is None:
            self._store = open_store(self.url)
        return self._store

    async def aclose(self) -> None:
        if self._store is not None:
            await self._store.close()

    @property
    def shown_url(self) -> str:
        """The URL as it may be printed: any password replaced by `***`."""
        return mask_url(self.url)

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
