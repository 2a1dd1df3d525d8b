"""agent-sessions: the conversation-session store for the OpenAI Agents SDK."""

from .errors import (
    ConfigurationError,
    CorruptItemError,
    InvalidItemError,
    LockTimeoutError,
    SessionClosedError,
    SessionError,
)
from .info import SessionInfo, SessionPage
from .options import SessionOptions
from .redis import RedisSession
from .session import BaseSession

__version__ = "0.1.0"

__all__ = [
    "BaseSession",
    "ConfigurationError",
    "CorruptItemError",
    "InvalidItemError",
    "LockTimeoutError",
    "RedisSession",
    "SessionClosedError",
    "SessionError",
    "SessionInfo",
    "SessionOptions",
    "SessionPage",
    "__version__",
]
