"""The shipped lock contract tests, over every built-in backend and topology (conftest)."""

from turnstore.conformance.test_lock_contract import *  # noqa: F403
