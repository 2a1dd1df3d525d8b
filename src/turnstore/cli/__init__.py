"""The `turnstore` command line.

Imported only by the console script and `python -m turnstore`: nothing on the library's
import path imports this package (or `rich`, which it uses when installed).
"""

from __future__ import annotations

from .app import main

__all__ = ["main"]
