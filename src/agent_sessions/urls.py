"""URL helpers shared by every backend: masking secrets and reading session options."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ConfigurationError

__all__ = ["mask_url", "parse_bool", "split_options"]

_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^@/?#]*)@")
_SECRET_PARAMS = re.compile(r"(?i)([?&](?:password|ssl_password)=)[^&#]*")


def mask_url(url: str) -> str:
    """The URL with any password replaced by `***` (user names are kept)."""
    match = _USERINFO.match(url)
    if match:
        user, colon, _secret = match.group("userinfo").partition(":")
        masked = f"{user}:***" if colon else "***"
        url = match.group("scheme") + masked + "@" + url[match.end() :]
    return _SECRET_PARAMS.sub(r"\1***", url)


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"not a boolean: {text!r}")


def _ttl(text: str) -> float | None:
    return None if text.strip().lower() in ("", "none", "0") else float(text)


def _int_or_none(text: str) -> int | None:
    return None if text.strip().lower() in ("", "none") else int(text)


_SESSION_OPTION_PARSERS: dict[str, Callable[[str], Any]] = {
    "ttl": _ttl,
    "refresh_ttl_on_read": parse_bool,
    "max_turns": _int_or_none,
    "max_items": _int_or_none,
    "on_corrupt": str,
    "max_item_bytes": int,
}


def split_options(params: Mapping[str, str], url: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Split URL query parameters into typed session options and the rest."""
    session: dict[str, Any] = {}
    rest: dict[str, str] = {}
    for name, text in params.items():
        parser = _SESSION_OPTION_PARSERS.get(name)
        if parser is None:
            rest[name] = text
            continue
        try:
            session[name] = parser(text)
        except (ValueError, ConfigurationError):
            raise ConfigurationError(
                f"bad value {text!r} for option {name!r} in {mask_url(url)!r}"
            ) from None
    return session, rest
