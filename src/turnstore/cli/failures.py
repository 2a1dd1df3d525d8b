"""What went wrong, in one line an operator can act on, with no secret in it.

`describe` turns a failure of a store (or of its driver) into one line naming the problem
and the URL (password masked): a server that wants a password, a refused password, a TLS
handshake, a missing SQLite directory. `Scrubber` removes the secrets of every URL of the
command from any text before it is printed.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import SessionError
from ..urls import mask_url

__all__ = ["Scrubber", "describe", "is_operational"]


class Scrubber:
    """Removes the secrets of a store URL from text that is about to be printed."""

    def __init__(self, url: str, *more_urls: str) -> None:
        self.url = url
        self.urls = [url, *more_urls]
        found = {secret for each in self.urls for secret in _url_secrets(each)}
        # Longest first, so that a secret containing another is replaced whole.
        self.secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for url in self.urls:
            text = text.replace(url, mask_url(url))
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def _url_secrets(url: str) -> list[str]:
    """The password (raw and percent-decoded) and any secret query parameter of `url`."""
    found: set[str] = set()
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    userinfo, at, _ = (parts.netloc if parts else url).rpartition("@")
    if at and ":" in userinfo:
        found.add(userinfo.partition(":")[2])
    for name, value in parse_qsl(parts.query if parts else "", keep_blank_values=True):
        if any(word in name.lower() for word in ("password", "secret", "token")):
            found.add(value)
    found |= {unquote(secret) for secret in found}
    return sorted((s for s in found if s), key=len, reverse=True)


def _driver_errors() -> tuple[type[BaseException], ...]:
    # redis-py is imported only by a command that used Redis: look, do not import.
    errors: list[type[BaseException]] = []
    exceptions = sys.modules.get("redis.exceptions")
    if exceptions is not None:
        errors += [exceptions.RedisError, exceptions.RedisClusterException]
    return tuple(errors)


def is_operational(exc: BaseException) -> bool:
    """A failure of the store or its connection (exit 1), not a bug (a traceback)."""
    return isinstance(
        exc,
        (SessionError, OSError, sqlite3.Error, asyncio.TimeoutError, *_driver_errors()),
    )


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _text(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


#: What a server says when it wants a password and was given none (RESP3's HELLO, AUTH
#: checks, ACL default user off), and when it refuses the one it was given.
_NEEDS_PASSWORD = (
    "noauth",
    "authentication required",
    "hello must be called with the client already authenticated",
    # Redis 7 answers a request of more than 10 arguments (a listing script) from a client
    # that has not authenticated with this, and closes the connection.
    "unauthenticated multibulk length",
)
_WRONG_PASSWORD = ("wrongpass", "invalid password", "invalid username-password pair")


def describe(exc: BaseException, url: str) -> str:
    """One line: what failed, where (the URL, password masked), and what to do."""
    where = mask_url(url)
    chain = _chain(exc)
    texts = [_text(each).lower() for each in chain]
    if any(marker in text for text in texts for marker in _WRONG_PASSWORD):
        return f"{where}: the server refused the user name or password"
    if any(marker in text for text in texts for marker in _NEEDS_PASSWORD):
        return (
            f"{where}: the server requires a password; put it in the URL "
            "(redis://:PASSWORD@host:port/db or redis://USER:PASSWORD@host:port/db)"
        )
    ssl = sys.modules.get("ssl")  # loaded by any TLS connection; not imported for others
    for each in chain:
        if (ssl is not None and isinstance(each, ssl.SSLError)) or "ssl" in type(
            each
        ).__name__.lower():
            reason = getattr(each, "reason", None) or _text(each)
            return f"{where}: the TLS handshake failed ({reason})"
    if any("certificate verify failed" in text or "wrong version number" in text for text in texts):
        return f"{where}: the TLS handshake failed ({_text(chain[-1])})"
    detail = _text(exc)
    if isinstance(exc, SessionError):
        # Our own messages say what failed; the URL is added when they do not name it.
        return detail if where in detail or "SQLite database" in detail else f"{where}: {detail}"
    return f"{where}: {detail}"
