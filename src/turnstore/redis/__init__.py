"""The Redis backend: standalone, Sentinel and Cluster (Valkey too)."""

from .manager import RedisSessionManager
from .session import RedisSession
from .store import RedisStore

__all__ = ["RedisSession", "RedisSessionManager", "RedisStore"]
