"""turnstore: the conversation-session store for the OpenAI Agents SDK."""

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
from .records import CorruptItem, SessionRecord, export_session, import_session
from .redis import RedisSession, RedisSessionManager, RedisStore
from .session import BaseSession
from .sqlite import SQLiteSession, SQLiteStore
from .store import BaseStore, SessionStore, open_store, register_backend

__version__ = "0.1.0"

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
    "import_session",
    "open_store",
    "register_backend",
]
