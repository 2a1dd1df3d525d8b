"""The shipped index contract tests, over every built-in backend and topology (conftest)."""

from turnstore.conformance.test_index_contract import *  # noqa: F403
