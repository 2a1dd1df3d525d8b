"""`python -m turnstore.conformance URL`: the shipped suite against any store URL, a
third-party scheme included (the toy backend here, installed through an entry point)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import turnstore
from turnstore import MemoryStore
from turnstore.conformance.__main__ import main
from turnstore.conformance.items import user

TOY = Path(__file__).parent / "toy" / "turnstore_toy.py"

# A toy whose pop takes the oldest item instead of the newest: the suite must catch it.
BROKEN_POP = """
from turnstore_toy import ToySession, ToyStore, resolve_options
from turnstore.backend import PopResult


class ForgetfulSession(ToySession):
    async def storage_pop(self, skip_corrupt):
        entry = self._live()
        if not entry or not entry["items"]:
            return None
        return PopResult(raw=entry["items"].pop(0), position=0)


class ForgetfulStore(ToyStore):
    def session(self, session_id, **overrides):
        options, _ = resolve_options([overrides], base=self.options)
        return ForgetfulSession(session_id, space=self.space, store=self, **options.keywords())


def open_forgetful_store(url, **options):
    session_options, _ = resolve_options([options], context=url)
    return ForgetfulStore(url.split("://", 1)[1] or "default", session_options)
"""


def install(site: Path, name: str, module: str, scheme: str, opener: str) -> None:
    """What pip leaves for a package with a `turnstore.backends` entry point."""
    dist_info = site / f"{name}-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text(
        f"[turnstore.backends]\n{scheme} = {module}:{opener}\n", encoding="utf-8"
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    directory = tmp_path / "site-packages"
    directory.mkdir()
    shutil.copy(TOY, directory / "turnstore_toy.py")
    install(directory, "turnstore_toy", "turnstore_toy", "toy", "open_toy_store")
    (directory / "turnstore_forgetful.py").write_text(BROKEN_POP, encoding="utf-8")
    install(
        directory, "turnstore_forgetful", "turnstore_forgetful", "forgetful", "open_forgetful_store"
    )
    return directory


def run_suite(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "turnstore.conformance", *args],
        cwd=site,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_third_party_backend_passes_the_whole_suite(site: Path) -> None:
    result = run_suite(site, "toy://suite", "-q")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_a_backend_that_breaks_the_contract_fails_the_suite(site: Path) -> None:
    result = run_suite(site, "forgetful://suite", "-q", "-k", "pop")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "test_pop_returns_and_removes_the_newest_item FAILED" in result.stdout or (
        "FAILED" in result.stdout
        and "test_pop_returns_and_removes_the_newest_item" in result.stdout
    )


def test_the_memory_backend_passes_the_shipped_suite(site: Path) -> None:
    result = run_suite(site, "memory://", "-q", "-x")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_an_unknown_scheme_is_a_usage_error(site: Path) -> None:
    result = run_suite(site, "nosuch://x")
    assert result.returncode == 2
    assert "nosuch" in result.stderr


def test_no_url_is_a_usage_error() -> None:
    assert main([]) == 2


async def test_a_store_holding_sessions_is_refused_without_clear() -> None:
    busy = MemoryStore(name="conformance-busy")
    await busy.session("kept").add_items([user("keep me")])
    # main() runs its own event loop, as the command does: give it a thread.
    assert await asyncio.to_thread(main, ["memory://conformance-busy"]) == 2
    assert await busy.session("kept").get_items() == [user("keep me")]
    await busy.close()


# `python -m turnstore.conformance`, run by an interpreter that sees nothing installed
# (-I -S: no site-packages, no PYTHONPATH) but the package itself, linked into `path`.
RUN_ISOLATED = """
import runpy, sys
sys.path.insert(0, sys.argv[1])
for blocked in sys.argv[2:]:
    sys.modules[blocked] = None  # an import of it fails, as of a package not installed
sys.argv = ["turnstore.conformance", "memory://"]
runpy.run_module("turnstore.conformance", run_name="__main__", alter_sys=True)
"""


def run_isolated(tmp_path: Path, *blocked: str, site: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "turnstore").symlink_to(Path(turnstore.__file__).parent)
    flags = ["-I"] if site else ["-I", "-S"]
    return subprocess.run(
        [sys.executable, *flags, "-c", RUN_ISOLATED, str(tmp_path), *blocked],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_pytest_the_command_says_which_extra_to_install(tmp_path: Path) -> None:
    result = run_isolated(tmp_path, site=False)
    assert result.returncode == 2, result.stderr
    assert "missing here: pytest, pytest-asyncio." in result.stderr
    assert "pip install 'turnstore[conformance]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_pytest_asyncio_the_command_names_it(tmp_path: Path) -> None:
    result = run_isolated(tmp_path, "pytest_asyncio", site=True)
    assert result.returncode == 2, result.stderr
    assert "missing here: pytest-asyncio." in result.stderr
    assert "pip install 'turnstore[conformance]'" in result.stderr
