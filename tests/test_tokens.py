"""Batch tokens: every `add_items` call's token differs from every other's, including those
of a forked worker process (a repeated token would make the store drop a batch)."""

from __future__ import annotations

import multiprocessing
import sys

import pytest

from turnstore.backend import batch_token


def test_tokens_in_one_process_never_repeat() -> None:
    tokens = [batch_token() for _ in range(10_000)]
    assert len(set(tokens)) == len(tokens)
    assert all(token.startswith("b:") for token in tokens)


def _child_tokens(queue: multiprocessing.Queue[list[str]]) -> None:
    queue.put([batch_token() for _ in range(3)])


@pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")
def test_a_forked_child_does_not_repeat_its_parents_tokens() -> None:
    batch_token()  # the parent has a prefix and a serial number in use
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[list[str]] = context.Queue()
    child = context.Process(target=_child_tokens, args=(queue,))
    child.start()
    child_tokens = queue.get(timeout=30)
    child.join(timeout=30)
    parent_tokens = [batch_token() for _ in range(3)]
    assert not set(child_tokens) & set(parent_tokens)
    # The child drew a prefix of its own, not just a later serial number.
    assert child_tokens[0].rsplit(".", 1)[0] != parent_tokens[0].rsplit(".", 1)[0]
