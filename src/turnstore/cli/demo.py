"""`demo`: an agent whose conversation outlives the process that had it.

The first process runs two turns of a weather agent through the real `agents.Runner`, driven
by the SDK's offline `ScriptedModel` (no API key, no network). A second process (the hidden
`demo-resume` command) opens the same store and session and runs one more turn; its scripted
model answers from the history it was given, so the answer proves what the model saw.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agents import Agent, Runner, RunResult, function_tool, set_tracing_disabled
from agents.items import TResponseOutputItem
from agents.testing import ModelCall, ModelStep, ScriptedModel, assistant_message, function_call

from .context import CommandError, Context, UsageError
from .inspect import fetch_conversation, header_lines
from .render import Output, conversation_lines, format_arguments

__all__ = ["run_demo", "run_demo_resume"]

#: The hidden command the second process runs.
RESUME_COMMAND = "demo-resume"
#: Longest wait for the second process, in seconds.
RESUME_TIMEOUT = 120.0

WEATHER = {"Paris": "22 °C and sunny", "Tokyo": "18 °C with light rain"}
FOLLOW_UP = "Which cities did I ask about?"


@dataclass(frozen=True)
class ScriptedTurn:
    question: str
    city: str
    answer: str


FIRST_PROCESS_TURNS = [
    ScriptedTurn("What's the weather in Paris?", "Paris", "It's 22 °C and sunny in Paris."),
    ScriptedTurn("And in Tokyo?", "Tokyo", "Tokyo is cooler: 18 °C with light rain."),
]


@function_tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    return WEATHER.get(city, "no data for that city")


def weather_agent(model: ScriptedModel) -> Agent[Any]:
    return Agent(
        name="weather assistant",
        instructions="Answer briefly.",
        model=model,
        tools=[get_weather],
    )


def _quiet_sdk() -> None:
    # The demo runs offline: tracing would only print warnings about a missing API key.
    os.environ["OPENAI_AGENTS_DISABLE_TRACING"] = "1"
    set_tracing_disabled(True)


def _turn_steps(turn: ScriptedTurn, number: int, run: str) -> list[ModelStep]:
    # Ids unique to this run: the SDK drops input items whose id it has seen, so a second
    # demo on the same session would otherwise hide the first one's items from the model.
    call_id = f"call_{turn.city.lower()}_{run}_{number}"
    return [
        ModelStep(output=[function_call("get_weather", {"city": turn.city}, call_id=call_id)]),
        ModelStep(output=[assistant_message(turn.answer, item_id=f"msg_{run}_{number}")]),
    ]


def _tool_calls(result: RunResult) -> list[str]:
    """The tool calls a run made, as `name(arguments)`."""
    calls = []
    for item in result.new_items:
        if item.type == "tool_call_item":
            raw = item.raw_item
            name = getattr(raw, "name", None) or (raw.get("name") if isinstance(raw, dict) else "")
            arguments = getattr(raw, "arguments", None)
            if arguments is None and isinstance(raw, dict):
                arguments = raw.get("arguments", "")
            calls.append(f"{name}({format_arguments(arguments or '')})")
    return calls


async def _item_count(ctx: Context, session_id: str) -> int:
    info = await ctx.store.get_info(session_id)
    return info.item_count if info else 0


async def run_demo(ctx: Context, args: argparse.Namespace) -> int:
    """Run the two-process demo and print what happened and where it is stored."""
    if ctx.missing_directory() is not None:
        raise CommandError(
            f"cannot create {ctx.database_file}: the directory {ctx.missing_directory()} does "
            "not exist"
        )
    if ctx.is_memory:
        raise UsageError(
            f"the demo needs a store that a second process can open; {ctx.shown_url} is an "
            "in-memory database (use a file, e.g. sqlite:///turnstore.db)"
        )
    _quiet_sdk()
    # --json: the story is not printed; one object at the end says what happened.
    out = Output(io.StringIO(), color=False) if ctx.json else ctx.out
    session_id: str = args.session or f"demo-{secrets.token_hex(3)}"
    session = ctx.store.session(session_id)
    # A first read fails on an unreachable store before anything suggests the demo is running
    # (ping() would only say False, without the reason).
    await ctx.store.get_info(session_id)

    out.line(out.style("turnstore demo", "bold") + ": a conversation that outlives its process")
    out.line()
    out.line(f"  store    {ctx.shown_url}")
    if ctx.database_file is not None:
        out.line(f"  file     {ctx.database_file}")
    out.line(f"  session  {out.style(session_id, 'bold', 'cyan')}")
    out.line()

    # -- 1. this process ----------------------------------------------------------------------
    first_pid = os.getpid()
    out.line(
        out.style(f"1. This process (pid {first_pid})", "bold")
        + " runs two turns through agents.Runner (scripted model, no network):"
    )
    run = secrets.token_hex(4)
    steps = [
        step for n, turn in enumerate(FIRST_PROCESS_TURNS, 1) for step in _turn_steps(turn, n, run)
    ]
    model = ScriptedModel(steps)
    agent = weather_agent(model)
    for number, turn in enumerate(FIRST_PROCESS_TURNS, 1):
        result = await Runner.run(agent, turn.question, session=session)
        ctx.progress()
        calls = ", ".join(_tool_calls(result)) or "no tool"
        count = await _item_count(ctx, session_id)
        out.line(f'   turn {number}  "{turn.question}"')
        out.line(out.style(f"           called {calls}; {count} items in the session", "dim"))
    model.assert_complete()
    await session.update_metadata({"source": "demo"})
    stored_by_first = await _item_count(ctx, session_id)
    out.line()

    # -- 2. a second process ------------------------------------------------------------------
    out.line(
        out.style("2. A new process", "bold")
        + " opens the same store and session and asks a follow-up:"
    )
    out.flush()  # shown before the second process starts, not after
    # A new interpreter imports the SDK before its own --timeout starts: wait for it longer.
    ctx.allow(RESUME_TIMEOUT)
    report = await _run_second_process(ctx, session_id)
    ctx.progress()
    earlier = int(report["earlier_items"])
    out.line(f'   turn {len(FIRST_PROCESS_TURNS) + 1}  "{FOLLOW_UP}"  (pid {report["pid"]})')
    remembered = earlier == stored_by_first
    if remembered:
        out.line(
            out.style("           ✓ ", "green")
            + f"the model saw {earlier} earlier items: the whole history, as process {first_pid} "
            "left it"
        )
    else:
        out.line(
            out.style("           ✗ ", "red")
            + f"the model saw {earlier} earlier items, but process {first_pid} stored "
            f"{stored_by_first}"
        )
    out.line(f'           it answered "{report["answer"]}"')
    out.line()

    # -- 3. the stored conversation -----------------------------------------------------------
    out.line(out.style("3. The conversation, read back from the store:", "bold"))
    out.line()
    found = await fetch_conversation(ctx.store, session_id)
    if found is None:
        raise CommandError(f"session {session_id!r} vanished from {ctx.shown_url}")
    info, items = found
    indent = "   "
    out.lines(indent + text if text else "" for text in header_lines(info, ctx))
    out.line()
    out.lines(indent + text if text else "" for text in conversation_lines(items, out))
    out.line()

    where = ctx.shown_url
    if ctx.database_file is not None:
        where += f"  (file {ctx.database_file})"
    out.line(f"Stored in {where}")
    out.line(f"See it again:   {out.style(ctx.command('show', session_id), 'bold')}")
    out.line(f"All sessions:   {out.style(ctx.command('list'), 'bold')}")
    if ctx.json:
        ctx.out.json(
            {
                "session_id": session_id,
                "store": ctx.shown_url,
                "first_pid": first_pid,
                "second_pid": report["pid"],
                "stored_by_first": stored_by_first,
                "seen_by_second": earlier,
                "remembered": remembered,
                "answer": report["answer"],
                "item_count": info.item_count,
            }
        )
    if not remembered:
        raise CommandError("the second process did not see the first process's history")
    return 0


async def _run_second_process(ctx: Context, session_id: str) -> dict[str, Any]:
    """Run `demo-resume` in a new interpreter and return the report it prints."""
    # The URL travels in the environment, not on the command line, where `ps` would show
    # its password to every user of the machine.
    env = {**os.environ, "TURNSTORE_URL": ctx.url, "OPENAI_AGENTS_DISABLE_TRACING": "1"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "turnstore",
        "--timeout",
        f"{ctx.timeout:g}",
        RESUME_COMMAND,
        session_id,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), RESUME_TIMEOUT)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise CommandError(
            f"the second process did not finish within {RESUME_TIMEOUT:.0f} s"
        ) from None
    if process.returncode != 0:
        detail = stderr.decode(errors="replace").strip()
        raise CommandError(
            f"the second process failed (exit {process.returncode})"
            + (f": {detail}" if detail else "")
        )
    try:
        report = json.loads(stdout.decode().strip().splitlines()[-1])
        if not isinstance(report, dict):
            raise ValueError
    except (ValueError, IndexError):
        raise CommandError(
            f"the second process printed no report: {stdout.decode(errors='replace')!r}"
        ) from None
    return report


def recall(history: Sequence[Any]) -> str:
    """What a model that was given `history` can say about the cities asked for."""
    outputs = {
        item.get("call_id"): item.get("output")
        for item in history
        if isinstance(item, dict) and item.get("type") == "function_call_output"
    }
    cities: list[str] = []
    for item in history:
        if isinstance(item, dict) and item.get("type") == "function_call":
            try:
                city = json.loads(item.get("arguments") or "{}").get("city")
            except (ValueError, AttributeError):
                continue
            if isinstance(city, str):
                weather = outputs.get(item.get("call_id"))
                cities.append(f"{city} ({weather})" if weather else city)
    if not cities:
        return "I don't know: this conversation has no earlier questions."
    listed = cities[0] if len(cities) == 1 else ", ".join(cities[:-1]) + " and " + cities[-1]
    return f"You asked about {listed}."


async def run_demo_resume(ctx: Context, args: argparse.Namespace) -> int:
    """The demo's second process: one more turn, reporting what the model was given."""
    _quiet_sdk()
    seen: dict[str, Any] = {}

    def answer_from_history(call: ModelCall) -> list[TResponseOutputItem]:
        given = list(call.input) if isinstance(call.input, list) else []
        history = given[:-1]  # the last input item is the new question itself
        seen["earlier_items"] = len(history)
        seen["answer"] = recall(history)
        return [assistant_message(seen["answer"], item_id=f"msg_resume_{secrets.token_hex(4)}")]

    model = ScriptedModel([ModelStep.respond(answer_from_history)])
    session = ctx.store.session(args.session_id)
    await Runner.run(weather_agent(model), FOLLOW_UP, session=session)
    model.assert_complete()
    ctx.out.line(json.dumps({"pid": os.getpid(), **seen}, ensure_ascii=False))
    return 0
