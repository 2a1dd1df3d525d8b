"""The in-process backend (`memory://`)."""

from .session import MemorySession
from .store import MemoryStore, open_memory_store

__all__ = ["MemorySession", "MemoryStore", "open_memory_store"]
