"""The SQL is kept like the Lua: in statements/*.sql, run through `Schema`'s methods only."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from turnstore.sqlite.statements import FRAGMENTS, STATEMENTS

SQLITE = Path(__file__).resolve().parents[2] / "src" / "turnstore" / "sqlite"
# The DDL (tables, triggers, install, backfill) is apart, and connection.py only sets up
# connections (PRAGMAs) and opens and ends transactions.
NOT_STATEMENTS = {"ddl.py", "connection.py"}
_SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b")


def literal_strings(path: Path) -> list[str]:
    """Every string literal of a module (f-string parts too), docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_no_python_module_of_the_sqlite_backend_writes_a_statement() -> None:
    written = {
        path.name: found
        for path in sorted(SQLITE.rglob("*.py"))
        if path.name not in NOT_STATEMENTS
        if (found := [text for text in literal_strings(path) if _SQL.search(text)])
    }
    assert written == {}


def test_every_statement_of_the_sql_files_is_run_by_the_schema() -> None:
    source = (SQLITE / "schema.py").read_text(encoding="utf-8")
    unused = [name for name in [*STATEMENTS, *FRAGMENTS] if f'"{name}"' not in source]
    assert unused == []
