"""URL helpers shared by every backend: masking secrets and reading session options."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from .errors import ConfigurationError
from .options import SessionOptions, check_option_names, parse_bool

__all__ = ["mask_url", "parse_bool", "split_options", "split_userinfo"]

_SECRET_PARAMS = re.compile(r"(?i)([?&](?:password|ssl_password)=)[^&#]*")


def split_userinfo(url: str) -> tuple[str, str | None, str]:
    """`(scheme "://", userinfo or None, the rest)` of a URL.

    The userinfo ends at the last `@` before the query string, so that a password written
    without percent-encoding is read, and masked, whole even when it holds `/`, `:`, `@` or
    `#`; and one holding `?` too, unless a `=` or `&` follows that `?` before the `@` (that
    is a query string). A URL with an empty authority (`sqlite:///…`, `unix:///…`) has none.
    """
    prefix, sep, rest = url.partition("://")
    if not sep:
        prefix, rest = "", url
    elif rest.startswith("/"):
        return prefix + sep, None, rest
    query_at = rest.find("?")
    at = rest.rfind("@", 0, query_at if query_at >= 0 else len(rest))
    if query_at >= 0:
        query = rest[query_at:]
        ends = [i for i in (query.find("="), query.find("&")) if i >= 0]
        in_query = query.rfind("@", 0, min(ends) if ends else len(query))
        if in_query >= 0:
            at = query_at + in_query
    if at < 0:
        return prefix + sep, None, rest
    return prefix + sep, rest[:at], rest[at + 1 :]


def mask_url(url: str) -> str:
    """The URL with any password replaced by `***` (user names are kept)."""
    prefix, userinfo, rest = split_userinfo(url)
    if userinfo is not None:
        user, colon, _secret = userinfo.partition(":")
        url = prefix + (f"{user}:***" if colon else "***") + "@" + rest
    return _SECRET_PARAMS.sub(r"\1***", url)


def split_options(
    params: Mapping[str, str], url: str, backend_options: Collection[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Split URL query parameters into typed session options and the backend's own.

    The session options and how each is read come from `SessionOptions` (`url_parsers`);
    `backend_options` are the other names the backend's URLs take, returned as text. Any
    other name raises `ConfigurationError` (`check_option_names`), as does an option only a
    keyword can set (`session_settings`).
    """
    parsers = SessionOptions.url_parsers()
    check_option_names(params, {*SessionOptions.names(), *backend_options}, repr(mask_url(url)))
    session: dict[str, Any] = {}
    rest: dict[str, str] = {}
    for name, text in params.items():
        parser = parsers.get(name)
        if parser is None:
            if name in SessionOptions.names():
                raise ConfigurationError(
                    f"option {name!r} cannot be set in a URL ({mask_url(url)!r}): "
                    "pass it as a keyword"
                )
            rest[name] = text
            continue
        try:
            session[name] = parser(text)
        except (ValueError, ConfigurationError):
            raise ConfigurationError(
                f"bad value {text!r} for option {name!r} in {mask_url(url)!r}"
            ) from None
    return session, rest
