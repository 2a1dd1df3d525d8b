"""Backends are providers (SPEC section 2, "URLs"): a third-party package adds a URL scheme
through the entry-point group `turnstore.backends`, or at run time with
`register_backend`, without changes to this package."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from turnstore import (
    ConfigurationError,
    SessionStore,
    SQLiteStore,
    open_store,
    register_backend,
    unregister_backend,
)
from turnstore.conformance.items import user
from turnstore.store import ENTRY_POINT_GROUP, registered_schemes

# A tiny third-party backend: sessions in a dict, served for `memtest://` URLs. It is written
# out as its own module, as an installed package would be.
MEMTEST_MODULE = '''
"""turnstore_memtest: an in-memory backend for turnstore."""

from turnstore.info import SessionPage
from turnstore.store import BaseStore


class MemtestSession:
    def __init__(self, store, session_id):
        self.session_id = session_id
        self.session_settings = None
        self._items = store.data.setdefault(session_id, [])

    async def get_items(self, limit=None):
        return list(self._items if limit is None else self._items[-limit:])

    async def add_items(self, items):
        self._items.extend(items)

    async def pop_item(self):
        return self._items.pop() if self._items else None

    async def clear_session(self):
        self._items.clear()


class MemtestStore(BaseStore):
    kind = "MemtestStore"

    def __init__(self, url, **options):
        super().__init__()
        self.url = url
        self.options = options
        self.data = {}

    def session(self, session_id, **overrides):
        self._check_open()
        return MemtestSession(self, session_id)

    async def get_info(self, session_id):
        return None

    async def list_sessions(self, *, limit=100, cursor=None, metadata=None):
        return SessionPage(sessions=[], next_cursor=None)

    async def count_sessions(self):
        return sum(1 for items in self.data.values() if items)

    async def delete_session(self, session_id):
        return bool(self.data.pop(session_id, None))

    async def purge_expired(self):
        return 0

    async def ping(self):
        return True

    async def storage_close(self):
        self.data.clear()


def open_memtest_store(url, **options):
    return MemtestStore(url, **options)
'''

BROKEN_MODULE = 'raise ImportError("this backend is broken")\n'


def install_distribution(site: Path, name: str, entry_points: dict[str, str]) -> None:
    """Write `<name>-1.0.dist-info` with `entry_points` in the group, as pip would."""
    dist_info = site / f"{name}-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8"
    )
    lines = "".join(f"{scheme} = {target}\n" for scheme, target in entry_points.items())
    (dist_info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}", encoding="utf-8")


# The schemes these tests register or install; each test leaves none of them behind.
TEST_SCHEMES = ("memtest", "memtest+tls", "broken", "sqlite")


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    """Each test starts from the built-in schemes (and the entry points installed then)."""
    unregister_backend(TEST_SCHEMES)
    yield
    unregister_backend(TEST_SCHEMES)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site-packages directory on sys.path holding the memtest package and a broken one."""
    directory = tmp_path / "site-packages"
    directory.mkdir()
    (directory / "turnstore_memtest.py").write_text(
        textwrap.dedent(MEMTEST_MODULE), encoding="utf-8"
    )
    (directory / "turnstore_broken.py").write_text(BROKEN_MODULE, encoding="utf-8")
    install_distribution(
        directory,
        "turnstore_memtest",
        {"memtest": "turnstore_memtest:open_memtest_store"},
    )
    install_distribution(directory, "turnstore_broken", {"broken": "turnstore_broken:open_store"})
    monkeypatch.syspath_prepend(str(directory))
    for module in ("turnstore_memtest", "turnstore_broken"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    return directory


# -- entry points ------------------------------------------------------------------------------


async def test_an_entry_point_serves_its_scheme(site: Path) -> None:
    store = open_store("memtest://bucket-1?region=eu", flavour="plain")
    assert type(store).__name__ == "MemtestStore"
    assert isinstance(store, SessionStore)
    assert store.url == "memtest://bucket-1?region=eu"  # type: ignore[attr-defined]
    assert store.options == {"flavour": "plain"}  # type: ignore[attr-defined]
    async with store:
        session = store.session("a")
        await session.add_items([user("hi")])
        assert await store.session("a").get_items() == [user("hi")]
        assert await store.count_sessions() == 1


def test_the_scheme_of_an_entry_point_is_case_insensitive(site: Path) -> None:
    assert type(open_store("MemTest://x")).__name__ == "MemtestStore"


def test_an_installed_scheme_is_listed_as_known(site: Path) -> None:
    assert "memtest" in registered_schemes()
    with pytest.raises(ConfigurationError, match="memtest") as caught:
        open_store("nosuch://x")
    assert "'nosuch'" in str(caught.value)
    for known in ("sqlite", "redis", "rediss", "unix", "redis+sentinel", "redis+cluster"):
        assert known in str(caught.value)


def test_a_broken_backend_is_a_configuration_error_naming_its_scheme(site: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"'broken'.*this backend is broken"):
        open_store("broken://x")


async def test_a_broken_backend_does_not_break_the_other_schemes(site: Path) -> None:
    assert type(open_store("memtest://x")).__name__ == "MemtestStore"
    with pytest.raises(ConfigurationError, match="'nosuch'"):
        open_store("nosuch://x")
    store = open_store("sqlite://")
    assert isinstance(store, SQLiteStore)
    await store.close()


def test_an_entry_point_does_not_replace_a_built_in_scheme(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_distribution(
        site, "turnstore_hijack", {"sqlite": "turnstore_memtest:open_memtest_store"}
    )
    assert isinstance(open_store(f"sqlite:///{tmp_path}/x.db"), SQLiteStore)


def test_entry_points_are_not_imported_until_their_scheme_is_opened(site: Path) -> None:
    open_store("sqlite://")
    with pytest.raises(ConfigurationError):
        open_store("nosuch://x")
    assert "turnstore_memtest" not in sys.modules
    assert "turnstore_broken" not in sys.modules
    open_store("memtest://x")
    assert "turnstore_memtest" in sys.modules


# -- register_backend --------------------------------------------------------------------------


class RecordingStore(SQLiteStore):
    """A backend built on an existing store, as a package might ship one."""

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(":memory:", **options)
        self.url = url


async def test_register_backend_serves_its_schemes() -> None:
    register_backend(("memtest", "memtest+tls"), RecordingStore)
    for url in ("memtest://x", "MEMTEST+TLS://y?z=1"):
        store = open_store(url, ttl=60)
        assert isinstance(store, RecordingStore)
        assert (store.url, store.options.ttl) == (url, 60)
        async with store:
            await store.session("a").add_items([user("hi")])
            assert await store.count_sessions() == 1
    assert {"memtest", "memtest+tls"} <= set(registered_schemes())


def test_register_backend_takes_one_scheme_as_a_string() -> None:
    register_backend("memtest", RecordingStore)
    assert isinstance(open_store("memtest://x"), RecordingStore)


def test_a_registered_backend_wins_over_an_entry_point(site: Path) -> None:
    register_backend("memtest", RecordingStore)
    assert isinstance(open_store("memtest://x"), RecordingStore)


def test_an_unregistered_scheme_lists_the_known_ones() -> None:
    register_backend("memtest", RecordingStore)
    with pytest.raises(ConfigurationError, match="unknown URL scheme 'nosuch'") as caught:
        open_store("nosuch://x")
    assert "memtest" in str(caught.value)
    assert "redis+cluster" in str(caught.value)


def test_unregister_backend_forgets_a_registered_scheme() -> None:
    register_backend(("memtest", "memtest+tls"), RecordingStore)
    unregister_backend("MemTest")
    with pytest.raises(ConfigurationError, match="unknown URL scheme 'memtest'"):
        open_store("memtest://x")
    assert isinstance(open_store("memtest+tls://x"), RecordingStore)
    assert "memtest" not in registered_schemes()


async def test_unregistering_a_replaced_built_in_scheme_serves_the_built_in_again(
    tmp_path: Path,
) -> None:
    register_backend("sqlite", RecordingStore)
    assert isinstance(open_store(f"sqlite:///{tmp_path}/x.db"), RecordingStore)
    unregister_backend("sqlite")
    store = open_store(f"sqlite:///{tmp_path}/x.db")
    assert type(store) is SQLiteStore
    await store.close()


def test_a_backend_installed_while_the_process_runs_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError, match="unknown URL scheme 'memtest'"):
        open_store("memtest://x")
    site = tmp_path / "later"
    site.mkdir()
    (site / "turnstore_memtest.py").write_text(textwrap.dedent(MEMTEST_MODULE), encoding="utf-8")
    install_distribution(
        site, "turnstore_memtest", {"memtest": "turnstore_memtest:open_memtest_store"}
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "turnstore_memtest", raising=False)
    assert type(open_store("memtest://x")).__name__ == "MemtestStore"


def test_unregistering_a_loaded_entry_point_finds_it_again(site: Path) -> None:
    first = open_store("memtest://x")
    unregister_backend("memtest")
    sys.modules.pop("turnstore_memtest")  # as if the process started afresh
    second = open_store("memtest://x")
    assert type(second).__name__ == "MemtestStore"
    assert type(second) is not type(first)  # loaded again from the entry point
