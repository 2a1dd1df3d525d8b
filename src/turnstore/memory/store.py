"""`MemoryStore` and the `memory://` provider: the store contract in this process."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlsplit

from ..backend import validate_index_metadata
from ..errors import ConfigurationError
from ..info import SessionInfo, SessionPage
from ..items import DEFAULT_MAX_ITEM_BYTES
from ..options import OnCorrupt, SessionOptions, resolve_options, validate_session_id
from ..store import BaseStore, Progress, decode_cursor, encode_cursor
from ..urls import mask_url, split_options
from .data import MemoryConnection, MemoryData
from .session import MemorySession

__all__ = ["MemoryStore", "open_memory_store"]

# Named stores of this process: `memory://name` (or `MemoryStore(name=...)`) reaches the same
# data from every store opened on the name, for as long as one of them is alive.
_NAMED: weakref.WeakValueDictionary[str, MemoryData] = weakref.WeakValueDictionary()
_NAMED_GUARD = threading.Lock()


def _named_data(name: str) -> MemoryData:
    with _NAMED_GUARD:
        data = _NAMED.get(name)
        if data is None:
            data = MemoryData()
            _NAMED[name] = data
        return data


class MemoryStore(BaseStore):
    """Sessions in this process's memory: every part of the store contract, no server.

    `MemoryStore()` is a new empty store; `MemoryStore(name="app")` (URL `memory://app`)
    shares its sessions with every store of this process opened on the same name.
    A metadata filter walks the sessions of its first indexed key; a filter on unindexed
    keys only walks the sessions in order (in memory, no I/O). The index belongs to the
    data: stores on one name may name different `index_metadata`, and each key any of them
    names is indexed for all (after `reindex()` when sessions existed before the key).
    A keyword that is no option raises `ConfigurationError` naming it.
    """

    kind = "MemoryStore"
    #: The class `session()` hands out (a subclass's `__init__` runs for each).
    session_class: type[MemorySession] = MemorySession

    def __init__(
        self,
        *,
        name: str | None = None,
        index_metadata: Sequence[str] = (),
        ttl: float | None = None,
        refresh_ttl_on_read: bool = True,
        max_turns: int | None = None,
        max_items: int | None = None,
        session_settings: Any = None,
        on_corrupt: OnCorrupt = "skip",
        max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES,
        **unknown: NoReturn,
    ) -> None:
        self._options, _ = resolve_options(
            [
                {
                    "ttl": ttl,
                    "refresh_ttl_on_read": refresh_ttl_on_read,
                    "max_turns": max_turns,
                    "max_items": max_items,
                    "session_settings": session_settings,
                    "on_corrupt": on_corrupt,
                    "max_item_bytes": max_item_bytes,
                },
                unknown,
            ],
            context=f"{type(self).__name__}(...)",
        )
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigurationError(f"a memory store's name must be a non-empty str: {name!r}")
        self.index_metadata = validate_index_metadata(index_metadata)
        super().__init__()
        self.name = name
        data = MemoryData() if name is None else _named_data(name)
        data.register(self.index_metadata)
        self._connection = MemoryConnection(data, self.kind)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, index_metadata={self.index_metadata!r})"

    @property
    def options(self) -> SessionOptions:
        """The defaults every session of this store starts from."""
        return self._options

    @property
    def _data(self) -> MemoryData:
        self._check_open()
        return self._connection.get()

    def session(self, session_id: str, **overrides: Any) -> MemorySession:
        """A session sharing this store's data and defaults (`overrides` win); no I/O."""
        self._check_open()
        options, _ = resolve_options(
            [overrides], base=self._options, context=f"{type(self).__name__}.session(...)"
        )
        return self.session_class(
            session_id,
            connection=self._connection,
            owns_connection=False,
            **options.keywords(),
        )

    async def get_info(self, session_id: str) -> SessionInfo | None:
        return self._data.info(validate_session_id(session_id))

    async def list_sessions(
        self,
        *,
        limit: int = 100,
        cursor: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> SessionPage:
        """Live sessions, most recently updated first (ties: id descending), by keyset."""
        self._check_open()
        wanted = self._check_page_args(limit, metadata)
        after = decode_cursor(cursor) if cursor is not None else None
        sessions, last = self._data.page(limit, after, wanted)
        next_cursor = None if last is None else encode_cursor(*last)
        return SessionPage(sessions=sessions, next_cursor=next_cursor)

    async def count_sessions(self) -> int:
        return self._data.count()

    async def delete_session(self, session_id: str) -> bool:
        return self._data.delete(validate_session_id(session_id))

    async def purge_expired(self) -> int:
        return self._data.purge()

    async def count_expired(self) -> int:
        """How many sessions `purge_expired` would remove now (nothing is changed)."""
        self._check_open()
        return self._data.count_expired()

    async def reindex(self, *, progress: Progress | None = None) -> int:
        """Index every session for the keys whose index is incomplete, in one atomic step
        (so an interruption leaves nothing half done); 0 when every index was complete."""
        data = self._data
        data.register(self.index_metadata)
        indexed = data.reindex()
        if indexed is None:
            return 0
        if progress is not None:
            progress(indexed)
        return indexed

    async def ping(self) -> bool:
        self._check_open()
        return True

    async def storage_close(self) -> None:
        self._connection.close()


#: The options of a `memory://` URL beyond the session options.
_URL_OPTIONS = frozenset({"index_metadata", "name"})


def open_memory_store(url: str, **options: Any) -> MemoryStore:
    """The `open_store` provider for `memory://` (a new store) and `memory://name`."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "memory" or parts.path not in ("", "/") or parts.fragment:
        raise ConfigurationError(f"not a memory:// URL: {url!r} (memory:// or memory://name)")
    try:
        params = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True))
    except ValueError:
        if parts.query:
            raise ConfigurationError(f"bad query string in {url!r}") from None
        params = {}
    from_url, rest = split_options(params, url, _URL_OPTIONS)
    session_options, extra = resolve_options(
        [from_url, rest, options], extra=_URL_OPTIONS, context=f"open_store({mask_url(url)!r}, ...)"
    )
    name = extra.get("name", parts.netloc or None)
    return MemoryStore(
        name=name,
        index_metadata=extra.get("index_metadata", ()),
        **session_options.keywords(),
    )
