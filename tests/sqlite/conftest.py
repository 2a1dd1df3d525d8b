"""Fixtures of the SQLite backend tests: real database files under pytest's tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def db_file(tmp_path: Path) -> str:
    """Path of a fresh database file (not created yet)."""
    return str(tmp_path / "sessions.db")
