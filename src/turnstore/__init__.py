"""turnstore: the conversation-session store for the OpenAI Agents SDK.

Public names load on first use (PEP 562): `import turnstore` costs almost nothing, and the
`turnstore` command never imports a backend (or the SDK) that it does not use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import (
        BackendError,
        BackendUnavailableError,
        ConfigurationError,
        CorruptItemError,
        InvalidItemError,
        LockLostError,
        LockTimeoutError,
        SessionClosedError,
        SessionError,
    )
    from .info import SessionInfo, SessionPage
    from .lock import SessionLock
    from .memory import MemorySession, MemoryStore
    from .options import SessionOptions
    from .records import (
        CorruptItem,
        SessionRecord,
        export_session,
        export_sessions,
        import_session,
        import_sessions,
    )
    from .redis import RedisSession, RedisSessionManager, RedisStore
    from .session import BaseSession
    from .sqlite import SQLiteSession, SQLiteStore
    from .store import BaseStore, SessionStore, open_store, register_backend, unregister_backend

__version__ = "0.1.0"

#: Where each public name lives.
_MODULES: dict[str, str] = {
    "BackendError": ".errors",
    "BackendUnavailableError": ".errors",
    "ConfigurationError": ".errors",
    "CorruptItemError": ".errors",
    "InvalidItemError": ".errors",
    "LockLostError": ".errors",
    "LockTimeoutError": ".errors",
    "SessionClosedError": ".errors",
    "SessionError": ".errors",
    "SessionInfo": ".info",
    "SessionPage": ".info",
    "SessionLock": ".lock",
    "MemorySession": ".memory",
    "MemoryStore": ".memory",
    "SessionOptions": ".options",
    "CorruptItem": ".records",
    "SessionRecord": ".records",
    "export_session": ".records",
    "export_sessions": ".records",
    "import_session": ".records",
    "import_sessions": ".records",
    "RedisSession": ".redis",
    "RedisSessionManager": ".redis",
    "RedisStore": ".redis",
    "BaseSession": ".session",
    "SQLiteSession": ".sqlite",
    "SQLiteStore": ".sqlite",
    "BaseStore": ".store",
    "SessionStore": ".store",
    "open_store": ".store",
    "register_backend": ".store",
    "unregister_backend": ".store",
}


__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "BaseSession",
    "BaseStore",
    "ConfigurationError",
    "CorruptItem",
    "CorruptItemError",
    "InvalidItemError",
    "LockLostError",
    "LockTimeoutError",
    "MemorySession",
    "MemoryStore",
    "RedisSession",
    "RedisSessionManager",
    "RedisStore",
    "SQLiteSession",
    "SQLiteStore",
    "SessionClosedError",
    "SessionError",
    "SessionInfo",
    "SessionLock",
    "SessionOptions",
    "SessionPage",
    "SessionRecord",
    "SessionStore",
    "__version__",
    "export_session",
    "export_sessions",
    "import_session",
    "import_sessions",
    "open_store",
    "register_backend",
    "unregister_backend",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
