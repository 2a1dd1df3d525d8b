"""Realistic SDK conversation items, as `Runner` stores them."""

from __future__ import annotations

from typing import Any


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: str, item_id: str = "msg_1") -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def function_call(call_id: str, name: str = "get_weather") -> dict[str, Any]:
    return {
        "id": f"fc_{call_id}",
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": '{"city":"Paris","units":"metric"}',
        "status": "completed",
    }


def function_output(call_id: str, output: str = "22 C and sunny") -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def reasoning(item_id: str = "rs_1") -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "The user wants the weather."}],
        "encrypted_content": "gAAAAABo" + "x" * 64,
    }


def turn(n: int) -> list[dict[str, Any]]:
    """A whole turn: the user asks, the model calls a tool, gets its output and answers."""
    return [
        user(f"question {n}"),
        reasoning(f"rs_{n}"),
        function_call(f"call_{n}"),
        function_output(f"call_{n}", f"answer {n}"),
        assistant(f"reply {n}", f"msg_{n}"),
    ]


SDK_ITEMS: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "developer", "content": "Use metric units."},
    user("What's the weather in Paris? ☀️ Ünïcødé, 中文, emoji 🧪, RTL עברית"),
    {
        "role": "user",
        "type": "message",
        "content": [
            {"type": "input_text", "text": "And this picture?"},
            {
                "type": "input_image",
                "image_url": "data:image/png;base64,iVBORw0KGgo=",
                "detail": "auto",
            },
            {"type": "input_file", "file_id": "file-abc123", "filename": "report.pdf"},
        ],
    },
    reasoning(),
    function_call("call_1"),
    function_output("call_1", '{"temp": 22.5, "ok": true, "list": [1, 2.0, null]}'),
    assistant('It is 22 °C.\nLine two\t"quoted" \\ backslash \u0000 nul'),
    {
        "type": "computer_call",
        "id": "cu_1",
        "call_id": "call_2",
        "action": {"type": "click", "x": 10, "y": -3, "button": "left"},
        "pending_safety_checks": [],
        "status": "completed",
    },
    {
        "type": "custom",
        "nested": {
            "deep": {"deeper": [{"a": 1}, [], {}, "", 0, -0.5, 1e-300, 12345678901234567890]}
        },
        "empty_string": "",
        "none": None,
        "true": True,
        "false": False,
        "float": 3.141592653589793,
        "big": 2**62,
    },
]
