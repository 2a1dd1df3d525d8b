"""The Redis backend: standalone, Sentinel and Cluster (Valkey too)."""

from .session import RedisSession

__all__ = ["RedisSession"]
