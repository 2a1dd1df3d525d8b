"""Item validation corner cases that need no backend: nesting deeper than the fast check
goes through the careful (iterative) walk, which names what is wrong; an item too deep
for any JSON encoder gets an `InvalidItemError`, not a `RecursionError`."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import pytest

from agent_sessions import InvalidItemError
from agent_sessions.items import decode_item, encode_items


def nested(depth: int, leaf: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"v": leaf}
    for _ in range(depth):
        item = {"v": [item]}
    return item


DEEP = sys.getrecursionlimit() + 500


def test_a_deeply_nested_item_that_json_can_encode_is_accepted() -> None:
    item = nested(150, "leaf")  # 300 levels: beyond orjson's own limit, within Python's
    (encoded,) = encode_items([item])
    assert json.loads(encoded) == item


def test_an_item_nested_beyond_what_json_can_encode_gets_a_clear_error() -> None:
    with pytest.raises(InvalidItemError, match=r"items\[0\]: .*nested too deeply"):
        encode_items([nested(DEEP, "leaf")])


@pytest.mark.parametrize("leaf", [math.nan, math.inf, {1: "int key"}, object()])
def test_a_bad_value_deeper_than_the_recursion_limit_is_refused(leaf: Any) -> None:
    with pytest.raises(InvalidItemError, match=r"items\[0\]"):
        encode_items([nested(DEEP, leaf)])


def test_plain_items_round_trip_through_the_fast_check() -> None:
    items = [{"role": "user", "content": [{"type": "input_text", "text": "hi", "n": 1.5}]}]
    assert [decode_item(raw) for raw in encode_items(items)] == items
