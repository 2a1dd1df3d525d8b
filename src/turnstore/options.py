"""Session options: validated once, shared by every backend and by the stores' defaults."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .errors import ConfigurationError
from .items import DEFAULT_MAX_ITEM_BYTES

__all__ = ["SessionOptions", "resolve_options", "validate_session_id"]

OnCorrupt = Literal["skip", "raise"]


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

    ttl: float | None = None
    refresh_ttl_on_read: bool = True
    max_turns: int | None = None
    max_items: int | None = None
    session_settings: Any = None
    on_corrupt: OnCorrupt = "skip"
    max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES

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
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigurationError(f"unknown session option(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **overrides)

    @classmethod
    def names(cls) -> frozenset[str]:
        return frozenset(f.name for f in dataclasses.fields(cls))

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
    any other name raises `ConfigurationError` naming it (and `context`, e.g. the URL).
    `base` gives the defaults (a store's options, for `store.session(**overrides)`).
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    known = SessionOptions.names()
    unknown = sorted(set(merged) - known - set(extra))
    if unknown:
        where = f" ({context})" if context else ""
        raise ConfigurationError(f"unknown option(s): {', '.join(unknown)}{where}")
    session = {name: value for name, value in merged.items() if name in known}
    base = base or SessionOptions()
    options = base.replace(**session) if session else base
    return options, {name: value for name, value in merged.items() if name not in known}
