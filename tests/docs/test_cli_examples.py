"""docs/cli.md and its generator, scripts/cli_examples.py, name the same examples.

The generator runs real commands (a demo, Redis servers) and is run by hand after a change
to what the CLI prints; this checks, without running it, that every example it makes has
its place on the page and every place is filled.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "cli.md"
MARKER = re.compile(r"^(?P<indent> *)<!-- cli-example: (?P<name>[\w-]+) -->$")


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cli_examples", ROOT / "scripts/cli_examples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def filled_markers() -> dict[str, list[str]]:
    """Each marker of the page and the lines of the console block after it."""
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    found: dict[str, list[str]] = {}
    for index, line in enumerate(lines):
        marker = MARKER.match(line)
        if marker is None:
            continue
        indent = marker["indent"]
        assert lines[index + 1] == f"{indent}```console", marker["name"]
        end = lines.index(f"{indent}```", index + 2)
        found[marker["name"]] = lines[index + 2 : end]
    return found


def test_every_example_of_the_generator_has_a_place_on_the_page() -> None:
    assert sorted(filled_markers()) == sorted(generator().NAMES)


def test_every_example_on_the_page_is_filled_with_commands_and_output() -> None:
    for name, block in filled_markers().items():
        assert block, f"{name}: empty (run scripts/cli_examples.py)"
        assert block[0].lstrip().startswith("$ "), f"{name}: does not start with a command"
