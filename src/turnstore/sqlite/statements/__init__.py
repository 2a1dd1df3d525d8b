"""The SQL of SQLite sessions and stores: named statements in `.sql` files, read once.

Kept as the Redis backend keeps its Lua: a reviewer reads each step as SQL, in
`session.sql` (one session's operations) and `store.sql` (counting, purging, listing,
reindexing), not as strings assembled in Python. A statement starts at a line
`-- name: NAME`; a *fragment*, a piece the listing composes by its filter, at
`-- fragment: NAME`. The comment lines below a header say what it does and what it binds.

Table names are placeholders (`{sessions}`, `{state}`, ...) that `render` fills once per table
pair; a fragment may keep placeholders that its caller fills per call (`{walk}`, `{n}`,
`{marks}`). The DDL (tables, triggers, install, backfill) is apart, in ddl.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources

__all__ = ["FRAGMENTS", "STATEMENTS", "fill", "render"]

_HEADER = re.compile(r"^-- (name|fragment): (\w+)\s*$")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _blocks(filename: str) -> list[tuple[str, str, str]]:
    """(kind, name, SQL) of each statement or fragment of a `.sql` file, in order.

    The SQL of a block is its lines up to the next header, comment and blank lines cut,
    without the closing `;`.
    """
    text = resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")
    blocks: list[tuple[str, str, list[str]]] = []
    for line in text.splitlines():
        header = _HEADER.match(line)
        if header is not None:
            blocks.append((header.group(1), header.group(2), []))
        elif blocks and line.strip() and not line.lstrip().startswith("--"):
            blocks[-1][2].append(line.rstrip())
    return [(kind, name, "\n".join(body).removesuffix(";")) for kind, name, body in blocks]


def _load(*filenames: str) -> tuple[dict[str, str], dict[str, str]]:
    """(statements, fragments) of the `.sql` files, by name."""
    found: dict[str, dict[str, str]] = {"name": {}, "fragment": {}}
    for filename in filenames:
        for kind, name, sql in _blocks(filename):
            if name in found["name"] or name in found["fragment"]:
                raise ValueError(f"{filename}: {name!r} is defined twice")
            found[kind][name] = sql
    return found["name"], found["fragment"]


def fill(template: str, **values: str) -> str:
    """`template` with every `{name}` of `values` replaced; other placeholders stay."""
    return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), template)


def render(templates: Mapping[str, str], tables: Mapping[str, str]) -> dict[str, str]:
    """Each template with the (quoted) table names filled in."""
    return {name: fill(template, **tables) for name, template in templates.items()}


_STATEMENTS, _FRAGMENTS = _load("session.sql", "store.sql")
#: Every whole statement, by name, its table names still placeholders.
STATEMENTS: Mapping[str, str] = _STATEMENTS
#: The pieces the listing composes, by name.
FRAGMENTS: Mapping[str, str] = _FRAGMENTS
