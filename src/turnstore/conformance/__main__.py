"""`python -m turnstore.conformance URL [pytest options]`: the suite against one store.

Exit status is pytest's: 0 when every test passes, 2 for a usage error. Every session of the
store at URL is deleted before each test, so point it at a store kept for testing; a store
that already holds sessions is refused unless `--clear` is given.
"""

from __future__ import annotations

import asyncio
import importlib
import sys

from ..errors import SessionError
from ..store import open_store
from ..urls import mask_url

USAGE = "usage: python -m turnstore.conformance URL [--clear] [pytest options]"

#: What the suite runs on (module: the package that installs it), all in the extra
#: `turnstore[conformance]`.
TEST_TOOLS = {"pytest": "pytest", "pytest_asyncio": "pytest-asyncio"}


def missing_test_tools() -> list[str]:
    """The packages of `TEST_TOOLS` that cannot be imported here."""
    missing = []
    for module, package in TEST_TOOLS.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    return missing


async def _stored_sessions(url: str) -> int:
    store = open_store(url)
    try:
        return await store.count_sessions()
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or "://" not in args[0]:
        print(USAGE, file=sys.stderr)
        return 2
    url, rest = args[0], args[1:]
    clear = "--clear" in rest
    rest = [arg for arg in rest if arg != "--clear"]
    missing = missing_test_tools()
    if missing:
        print(
            f"the conformance suite needs {' and '.join(TEST_TOOLS.values())}; "
            f"missing here: {', '.join(missing)}. "
            "Install them with: pip install 'turnstore[conformance]'",
            file=sys.stderr,
        )
        return 2
    import pytest

    try:
        held = asyncio.run(_stored_sessions(url))
    except SessionError as exc:
        print(f"cannot open {mask_url(url)}: {exc}", file=sys.stderr)
        return 2
    if held and not clear:
        print(
            f"{mask_url(url)} holds {held} session(s); the suite deletes every session of "
            "the store it runs against: pass --clear to run anyway",
            file=sys.stderr,
        )
        return 2
    return int(
        pytest.main(
            [
                "--pyargs",
                "turnstore.conformance",
                "-p",
                "turnstore.conformance.plugin",
                f"--turnstore-url={url}",
                "-o",
                "asyncio_mode=auto",
                "-o",
                "asyncio_default_fixture_loop_scope=function",
                "-p",
                "no:cacheprovider",
                # turnstore (and the SDK's anyio) were imported to check the store first.
                "-W",
                "ignore::pytest.PytestAssertRewriteWarning",
                *rest,
            ]
        )
    )


if __name__ == "__main__":
    sys.exit(main())
