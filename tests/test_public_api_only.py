"""The package uses only redis-py's public API: no private module, no private attribute."""

from __future__ import annotations

import ast
from pathlib import Path

import turnstore

SRC = Path(turnstore.__file__).parent

#: Private names of redis-py that an earlier version of this package read.
KNOWN_PRIVATE = {
    "_AsyncHiredisParser",
    "_parser",
    "_reader",
    "_stream",
    "_writer",
    "_host_error",
    "_available_connections",
    "_in_use_connections",
    "_hiredis_PushNotificationType",
    "_retries",
}


def _sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_no_module_imports_a_private_redis_module() -> None:
    offenders = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] in ("redis", "hiredis") and any(p.startswith("_") for p in parts):
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno}: {name}")
    assert offenders == []


def test_no_module_reads_a_known_private_redis_attribute() -> None:
    offenders = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = None
            if isinstance(node, ast.Attribute):
                name = node.attr
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr")
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
            ):
                name = node.args[1].value
            if name in KNOWN_PRIVATE:
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}: {name}")
    assert offenders == []
