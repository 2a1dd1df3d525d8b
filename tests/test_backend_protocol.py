"""The backend protocol (`turnstore.backend`) is what `BaseSession` and `BaseStore` declare:
a backend that leaves out a method of it cannot be instantiated, and is told which."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from turnstore import BaseSession, BaseStore
from turnstore.backend import SessionBackend, StoreBackend

# What a backend's store must write itself; the rest of StoreBackend has a generic form in
# BaseStore (reindex, snapshot_sessions, replace_sessions).
STORE_METHODS = {
    "session",
    "get_info",
    "list_sessions",
    "count_sessions",
    "delete_session",
    "purge_expired",
    "ping",
    "storage_close",
}


def protocol_methods(protocol: Any) -> set[str]:
    return {name for name, _ in inspect.getmembers(protocol, inspect.isfunction) if name[0] != "_"}


def test_a_store_that_implements_nothing_is_refused_naming_every_method_it_lacks() -> None:
    class EmptyStore(BaseStore):
        pass

    with pytest.raises(TypeError, match="abstract") as caught:
        EmptyStore()  # type: ignore[abstract]
    named = {name for name in STORE_METHODS if name in str(caught.value)}
    assert named == STORE_METHODS


def test_base_store_declares_or_implements_every_method_of_the_store_protocol() -> None:
    declared = protocol_methods(StoreBackend)
    assert declared - set(dir(BaseStore)) == set()
    assert set(BaseStore.__abstractmethods__) == STORE_METHODS
    assert declared >= STORE_METHODS


def test_base_session_declares_every_storage_primitive_of_the_session_protocol() -> None:
    assert protocol_methods(SessionBackend) <= set(BaseSession.__abstractmethods__)
