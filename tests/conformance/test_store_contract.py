"""The shipped store contract tests, over every built-in backend and topology (conftest)."""

from turnstore.conformance.test_store_contract import *  # noqa: F403
