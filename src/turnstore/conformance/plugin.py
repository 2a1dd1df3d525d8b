"""The pytest plugin of `python -m turnstore.conformance`: a `backend` fixture from a URL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .harness import Backend, UrlBackend

URL_OPTION = "--turnstore-url"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(URL_OPTION, required=True, help="the store URL to run the suite against")


@pytest.fixture
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    made = UrlBackend(str(request.config.getoption(URL_OPTION)))
    try:
        await made.start()
        yield made
    finally:
        await made.aclose()
