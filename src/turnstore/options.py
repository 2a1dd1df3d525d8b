"""Session options: validated once, shared by every backend and by the stores' defaults.

`SessionOptions` is the one place the options are written: each field says how a URL's query
spells it (`url_parsers`), and `check_option_names` is the one routine that refuses a name
that is no option, for URLs and keywords on every backend.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ConfigurationError
from .items import DEFAULT_MAX_ITEM_BYTES

__all__ = [
    "SessionOptions",
    "check_option_names",
    "parse_bool",
    "resolve_options",
    "validate_session_id",
]

OnCorrupt = Literal["skip", "raise"]


def parse_bool(text: str) -> bool:
    """A boolean as a URL's query writes it: 1/0, true/false, yes/no, on/off."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"not a boolean: {text!r}")


def _seconds_or_none(text: str) -> float | None:
    return None if text.strip().lower() in ("", "none", "0") else float(text)


def _int_or_none(text: str) -> int | None:
    return None if text.strip().lower() in ("", "none") else int(text)


def _in_urls(parse: Callable[[str], Any]) -> dict[str, Any]:
    """Field metadata: the option can be set in a URL's query, read by `parse`."""
    return {"from_text": parse}


def check_option_names(given: Iterable[str], known: Collection[str], where: str) -> None:
    """Refuse every name of `given` that is not in `known`: `ConfigurationError` naming
    each (with the closest known name, when one is close) and `where` (the URL, password
    masked, or the call) the names were given in.

    The one routine every URL parser and constructor refuses an unknown option with, so
    the message reads the same wherever the option was mistyped.
    """
    unknown = sorted(set(given) - set(known))
    if not unknown:
        return
    named = []
    for name in unknown:
        close = difflib.get_close_matches(name, sorted(known), n=1)
        named.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    plural = "s" if len(unknown) > 1 else ""
    raise ConfigurationError(f"unknown option{plural} {', '.join(named)} in {where}")


def validate_session_id(session_id: object) -> str:
    """Return `session_id` if it is a non-empty `str` that encodes as UTF-8."""
    if not isinstance(session_id, str):
        raise ConfigurationError(f"session_id must be a str, not {type(session_id).__name__}")
    if not session_id:
        raise ConfigurationError("session_id must not be empty")
    try:
        session_id.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError("session_id must be valid Unicode (no lone surrogates)") from None
    return session_id


def _positive_int_or_none(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a positive int or None, not {value!r}")
    return value


@dataclass(frozen=True)
class SessionOptions:
    """The per-session behaviour that every backend honours.

    `ttl` is in seconds (sliding; `None` never expires), `max_turns` is the window applied
    when `get_items()` gets no limit, `max_items` caps retention (oldest trimmed on append).
    """

    ttl: float | None = field(default=None, metadata=_in_urls(_seconds_or_none))
    refresh_ttl_on_read: bool = field(default=True, metadata=_in_urls(parse_bool))
    max_turns: int | None = field(default=None, metadata=_in_urls(_int_or_none))
    max_items: int | None = field(default=None, metadata=_in_urls(_int_or_none))
    # An SDK object (or a mapping of its fields): keywords only, no URL spelling.
    session_settings: Any = None
    on_corrupt: OnCorrupt = field(default="skip", metadata=_in_urls(str))
    max_item_bytes: int = field(default=DEFAULT_MAX_ITEM_BYTES, metadata=_in_urls(int))

    def __post_init__(self) -> None:
        ttl = self.ttl
        if ttl is not None:
            if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
                raise ConfigurationError(f"ttl must be a number of seconds or None, not {ttl!r}")
            if not math.isfinite(ttl) or ttl <= 0:
                raise ConfigurationError(f"ttl must be a positive number of seconds, not {ttl!r}")
            if ttl * 1000 < 1:
                raise ConfigurationError(f"ttl must be at least 1 millisecond, not {ttl!r}")
        if not isinstance(self.refresh_ttl_on_read, bool):
            raise ConfigurationError(
                f"refresh_ttl_on_read must be a bool, not {self.refresh_ttl_on_read!r}"
            )
        _positive_int_or_none("max_turns", self.max_turns)
        _positive_int_or_none("max_items", self.max_items)
        if self.on_corrupt not in ("skip", "raise"):
            raise ConfigurationError(
                f"on_corrupt must be 'skip' or 'raise', not {self.on_corrupt!r}"
            )
        if _positive_int_or_none("max_item_bytes", self.max_item_bytes) is None:
            raise ConfigurationError("max_item_bytes must be a positive int")

    @property
    def ttl_ms(self) -> int | None:
        return None if self.ttl is None else max(1, round(self.ttl * 1000))

    def replace(self, **overrides: Any) -> SessionOptions:
        """A copy with `overrides` applied; an unknown name raises `ConfigurationError`."""
        check_option_names(overrides, self.names(), "SessionOptions.replace()")
        return dataclasses.replace(self, **overrides)

    @classmethod
    def names(cls) -> frozenset[str]:
        return frozenset(f.name for f in dataclasses.fields(cls))

    @classmethod
    def url_parsers(cls) -> dict[str, Callable[[str], Any]]:
        """The options a URL's query can set, each with the function reading its text."""
        return {
            f.name: f.metadata["from_text"]
            for f in dataclasses.fields(cls)
            if "from_text" in f.metadata
        }

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SessionOptions:
        return cls().replace(**dict(values))

    def keywords(self) -> dict[str, Any]:
        """The options as the keyword arguments of every session constructor."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def resolve_options(
    layers: Iterable[Mapping[str, Any]],
    *,
    extra: Collection[str] = (),
    context: str = "",
    base: SessionOptions | None = None,
) -> tuple[SessionOptions, dict[str, Any]]:
    """The one place session options are merged and validated, for URLs and keywords alike.

    `layers` are applied in order, later ones winning (a URL's query, then keywords); names
    in `extra` are a backend's own options (`key_prefix`, `db_path`...) and come back apart;
    any other name raises `ConfigurationError` (`check_option_names`) naming it and
    `context`, the call the names were given to (`"SQLiteStore(...)"`).
    `base` gives the defaults (a store's options, for `store.session(**overrides)`).
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    known = SessionOptions.names()
    check_option_names(merged, known | set(extra), context or "the session options")
    session = {name: value for name, value in merged.items() if name in known}
    base = base or SessionOptions()
    options = base.replace(**session) if session else base
    return options, {name: value for name, value in merged.items() if name not in known}
