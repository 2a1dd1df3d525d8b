"""Item validation corner cases that need no backend: nesting deeper than the fast check
goes through the careful (iterative) walk, which names what is wrong; an item too deep
for any JSON encoder gets an `InvalidItemError`, not a `RecursionError`."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import pytest

from turnstore import InvalidItemError
from turnstore.items import decode_item, encode_items


def nested(depth: int, leaf: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"v": leaf}
    for _ in range(depth):
        item = {"v": [item]}
    return item


# Beyond Python's recursion limit and, from Python 3.12 on, beyond the C recursion limit that
# the json module's encoder checks instead (it encodes a few thousand levels there).
DEEP = max(sys.getrecursionlimit() + 500, 5000)


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


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ({"v": math.nan}, "not JSON"),
        ({"v": 2.0, 3: "int key"}, "keys must be str"),
        ({"v": "x" * 2_000}, "max_item_bytes"),
        ({"v": b"bytes"}, "bytes"),
    ],
)
def test_the_bad_item_of_a_batch_is_named_by_its_index(bad: dict[Any, Any], says: str) -> None:
    batch = [{"role": "user", "content": "fine"}, bad, {"role": "user", "content": "fine"}]
    with pytest.raises(InvalidItemError, match=rf"items\[1\]: .*{says}"):
        encode_items(batch, max_item_bytes=1_000)


def test_items_beside_the_fast_path_encode_as_the_standard_library_does() -> None:
    class Mapping(dict[str, Any]):
        pass

    batch: list[Any] = [
        {"role": "user", "content": "plain"},
        Mapping(role="user", content="a dict subclass"),
        {"n": 2**70, "nested": [{"big": -(2**65)}]},  # beyond orjson's 64-bit integers
        ({"t": (1, "tuple")}),
    ]
    encoded = encode_items(batch)
    assert [json.loads(data) for data in encoded] == [
        {"role": "user", "content": "plain"},
        {"role": "user", "content": "a dict subclass"},
        {"n": 2**70, "nested": [{"big": -(2**65)}]},
        {"t": [1, "tuple"]},
    ]
