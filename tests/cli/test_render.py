"""The pure rendering and scrubbing functions, in process (no store, no subprocess)."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest

from turnstore.cli.failures import Scrubber
from turnstore.cli.render import Output, conversation_lines, relative_time

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)


def plain() -> Output:
    return Output(io.StringIO(), color=False)


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (timedelta(seconds=-2), "just now"),
        (timedelta(seconds=-42), "42 s ago"),
        (timedelta(minutes=-3, seconds=-10), "3 min ago"),
        (timedelta(seconds=-3599), "1 h ago"),
        (timedelta(hours=5), "in 5 h"),
        (timedelta(hours=59, minutes=59), "in 2 days"),
        (timedelta(days=-1), "1 day ago"),
        (timedelta(days=-90), "2025-10-17"),
    ],
)
def test_relative_time_reads_like_speech(offset: timedelta, expected: str) -> None:
    assert relative_time(NOW + offset, NOW) == expected


def test_conversation_shows_parts_reasoning_and_other_tools() -> None:
    items = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is in this picture?"},
                {"type": "input_image", "image_url": "data:..."},
            ],
        },
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Hmm."}]},
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"q": "cats"}},
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "not json"},
        {"type": "function_call", "call_id": "c2", "name": "count", "arguments": '{"n": 2}'},
        {"type": "function_call_output", "call_id": "c1", "output": "found"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
    ]
    assert conversation_lines(items, plain()) == [
        "user         What is in this picture?",
        "             [image]",
        "reasoning    Hmm.",
        'tool call    web_search_call {"action": {"q": "cats"}}',
        "tool call    lookup(not json)",
        "tool call    count(n=2)",
        "tool result  lookup → found",  # its call is not the line above: named
        "assistant    [refused] No.",
    ]


def test_scrubber_removes_the_password_raw_and_percent_decoded() -> None:
    scrub = Scrubber("redis://user:p%40ss@host:6379/0")
    assert scrub("auth failed for p@ss and p%40ss at redis://user:p%40ss@host:6379/0") == (
        "auth failed for *** and *** at redis://user:***@host:6379/0"
    )
