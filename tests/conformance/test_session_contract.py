"""The shipped session contract tests, over every built-in backend and topology (conftest)."""

from turnstore.conformance.test_session_contract import *  # noqa: F403
