"""Turn boundaries: pure functions, no I/O.

A *turn* starts at an item whose `role` is `"user"`. Cutting history only at turn starts
keeps a `function_call` with its `function_call_output` and a reasoning item with the message
it belongs to, because neither of those is ever a user item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["first_turns_end", "is_turn_start", "last_turns_start", "turn_starts"]


def is_turn_start(item: Mapping[str, Any]) -> bool:
    """True when `item` opens a turn (its role is "user")."""
    return item.get("role") == "user"


def turn_starts(items: Sequence[Mapping[str, Any]]) -> list[int]:
    """Indexes of the items that open a turn, in order."""
    return [index for index, item in enumerate(items) if is_turn_start(item)]


def last_turns_start(items: Sequence[Mapping[str, Any]], turns: int) -> int | None:
    """Index where the last `turns` turns of `items` begin.

    `None` when `items` holds fewer than `turns` turn starts: the window then reaches past
    the first of these items, and a caller reading a suffix of a longer history must read more.
    """
    if turns <= 0:
        return len(items)
    seen = 0
    for index in range(len(items) - 1, -1, -1):
        if is_turn_start(items[index]):
            seen += 1
            if seen == turns:
                return index
    return None


def first_turns_end(items: Sequence[Mapping[str, Any]], turns: int) -> int:
    """Length of the prefix of `items` holding its first `turns` turns.

    Items before the first user item belong to the first turn.
    """
    starts = turn_starts(items)
    if turns <= 0:
        return 0
    if turns >= len(starts):
        return len(items)
    return starts[turns]
