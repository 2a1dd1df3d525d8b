"""Our sessions under the SDK's real `Runner`, driven offline by `ScriptedModel`."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from agents import Agent, Runner, function_tool
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

from tests.backends import Backend


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"22 C and sunny in {city}"


def weather_agent(model: ScriptedModel) -> Agent[Any]:
    return Agent(name="assistant", instructions="Be brief.", model=model, tools=[get_weather])


def first_run_script() -> list[ModelStep]:
    return [
        ModelStep(output=[function_call("get_weather", {"city": "Paris"}, call_id="call_1")]),
        ModelStep(output=[assistant_message("It is 22 C in Paris.", item_id="msg_1")]),
    ]


def second_run_script() -> list[ModelStep]:
    return [ModelStep(output=[assistant_message("You asked about Paris.", item_id="msg_2")])]


def contents(items: list[Any]) -> list[str]:
    """A readable digest of items: role or type, and text where there is one."""
    digest = []
    for item in items:
        if isinstance(item, dict):
            kind = item.get("role") or item.get("type")
            content = item.get("content")
            if isinstance(content, list):
                content = "".join(part.get("text", "") for part in content)
            digest.append(f"{kind}:{content or item.get('output') or item.get('name') or ''}")
        else:
            digest.append(str(item))
    return digest


EXPECTED_HISTORY = [
    "user:What's the weather in Paris?",
    "function_call:get_weather",
    "function_call_output:22 C and sunny in Paris",
    "assistant:It is 22 C in Paris.",
]


async def test_second_run_sees_the_first_runs_history(backend: Backend) -> None:
    session = backend.session()
    model = ScriptedModel(first_run_script() + second_run_script())
    agent = weather_agent(model)
    result = await Runner.run(agent, "What's the weather in Paris?", session=session)
    assert result.final_output == "It is 22 C in Paris."
    assert contents(await session.get_items()) == EXPECTED_HISTORY

    result = await Runner.run(agent, "What did I ask?", session=session)
    assert result.final_output == "You asked about Paris."
    assert contents(model.calls[-1].input) == [*EXPECTED_HISTORY, "user:What did I ask?"]
    assert contents(await session.get_items()) == [
        *EXPECTED_HISTORY,
        "user:What did I ask?",
        "assistant:You asked about Paris.",
    ]
    model.assert_complete()


async def test_streamed_runs_share_history(backend: Backend) -> None:
    session = backend.session()
    model = ScriptedModel(first_run_script() + second_run_script())
    agent = weather_agent(model)
    for text in ["What's the weather in Paris?", "What did I ask?"]:
        streamed = Runner.run_streamed(agent, text, session=session)
        async for _ in streamed.stream_events():
            pass
    assert contents(model.calls[-1].input) == [*EXPECTED_HISTORY, "user:What did I ask?"]
    assert len(await session.get_items()) == 6


async def test_run_sync_in_a_worker_thread_uses_a_session_made_elsewhere(
    backend: Backend,
) -> None:
    session = backend.owning_session()
    model = ScriptedModel(first_run_script() + second_run_script())
    agent = weather_agent(model)
    await Runner.run(agent, "What's the weather in Paris?", session=session)
    outcome: dict[str, Any] = {}

    def worker() -> None:  # Runner.run_sync runs its own event loop in this thread
        try:
            outcome["result"] = Runner.run_sync(agent, "What did I ask?", session=session)
        except BaseException as exc:  # pragma: no cover - reported below
            outcome["error"] = exc

    thread = threading.Thread(target=worker)
    thread.start()
    await asyncio.to_thread(thread.join, 30)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"].final_output == "You asked about Paris."
    assert contents(model.calls[-1].input) == [*EXPECTED_HISTORY, "user:What did I ask?"]
    assert len(await session.get_items()) == 6


async def test_max_turns_window_feeds_the_model_exactly_the_last_turns(
    backend: Backend,
) -> None:
    session = backend.session(max_turns=1)
    model = ScriptedModel(first_run_script() + second_run_script())
    agent = weather_agent(model)
    await Runner.run(agent, "What's the weather in Paris?", session=session)
    await Runner.run(agent, "What did I ask?", session=session)
    # The window holds exactly the last turn (the whole tool exchange), then the new input.
    assert contents(model.calls[-1].input) == [*EXPECTED_HISTORY, "user:What did I ask?"]

    model.enqueue(ModelStep(output=[assistant_message("Bye.", item_id="msg_3")]))
    await Runner.run(agent, "Thanks", session=session)
    assert contents(model.calls[-1].input) == [
        "user:What did I ask?",
        "assistant:You asked about Paris.",
        "user:Thanks",
    ]
    info = await session.get_info()
    assert info is not None and info.item_count == 8  # the window limits reads, not storage
