"""The command line: argument parsing, dispatch, and exit codes.

Exit codes: 0 success; 1 operational error (the store failed or a session is missing: one
message on stderr, no traceback); 2 usage error (bad arguments, URL or option). A password in
the store URL never reaches stdout or stderr: messages go through `Scrubber` first.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sqlite3
import sys
import textwrap
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import TextIO
from urllib.parse import parse_qsl, unquote, urlsplit

from redis.exceptions import RedisClusterException, RedisError

from .. import __version__
from ..errors import ConfigurationError, SessionError
from ..store import DEFAULT_URL
from ..urls import mask_url
from .context import CommandError, Context, UsageError
from .render import Output

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "Scrubber", "build_parser", "main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
PROG = "turnstore"
#: Width of hand-wrapped help text.
HELP_WIDTH = 88
URL_ENV = "TURNSTORE_URL"

Handler = Callable[[Context, argparse.Namespace], Awaitable[int]]

#: Failures of the store or its connection: reported in one line, exit 1.
OPERATIONAL_ERRORS: tuple[type[BaseException], ...] = (
    SessionError,
    RedisError,
    RedisClusterException,  # not a RedisError in redis-py
    OSError,
    sqlite3.Error,
    asyncio.TimeoutError,  # not an OSError before Python 3.11
)


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
    # Longest first, so that a secret containing another is replaced whole.
    return sorted((s for s in found if s), key=len, reverse=True)


# -- the parser ------------------------------------------------------------------------------

#: Source layouts of `migrate` (readers in layouts.py, loaded only by `migrate`).
LAYOUTS = ("own", "sdk", "openai-agents-redis")

MIGRATE_EPILOG = """\
source layouts (--from-layout):
  own                  this package's own layout, at any store URL (the default)
  sdk                  what the Agents SDK's own sessions wrote:
                         sqlite:///path.db  tables agent_sessions and agent_messages of
                           SQLiteSession, read directly and read-only
                           (?sessions_table=...&messages_table=... if it used others)
                         redis://..., redis+cluster://..., redis+sentinel://...
                           keys of agents.extensions.memory.RedisSession: hash
                           {key_prefix}:{id} and list {key_prefix}:{id}:messages, found with
                           SCAN; ?key_prefix=... (default: agents:session)
  openai-agents-redis  keys of the openai-agents-redis package: hash agent_session:{id}
                       (session_id, created_at, updated_at) and list agent_messages:{id} of
                       JSON strings, found with SCAN (?session_prefix=...&messages_prefix=...
                       if it used others)
  Keys are found with SCAN, never KEYS; on Redis Cluster every primary is scanned.

A source item that cannot be decoded is reported (session and position) and counted; it
stays in the source and the rest of its session is copied. Sessions keep their metadata
and their creation, update and expiry times. They are copied the least recently updated
first.

examples:
  turnstore migrate sqlite:///turnstore.db redis://localhost:6379/0
  turnstore migrate --from-layout sdk sqlite:///conversations.db redis://localhost:6379/0
  turnstore migrate --from-layout sdk 'redis://old:6379/0?key_prefix=agents:session' \\
      redis+cluster://node1:7000,node2:7000
  turnstore migrate --from-layout openai-agents-redis redis://old:6379/0 \\
      redis://new:6379/0

exit codes: 0 every session copied and verified; 1 a corrupt source item, a failed or
mismatched session, or an operational error; 2 usage error; 130 interrupted (rerun the
same command to resume)"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _meta_pair(text: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if not eq or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return key, value


def _url_option(parser: argparse.ArgumentParser, *, default: object) -> None:
    parser.add_argument(
        "--url",
        metavar="URL",
        default=default,
        help=f"store URL (default: ${URL_ENV}, else {DEFAULT_URL})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=textwrap.fill(
            "Run the demo; list, show, export, import, migrate, delete and purge the sessions "
            "of an turnstore store.",
            HELP_WIDTH,
        ),
        epilog=(
            "examples:\n"
            f"  {PROG} demo\n"
            f"  {PROG} list --meta user_id=u1\n"
            f"  {PROG} --url redis://localhost:6379/0 show SESSION_ID --last 20\n"
            f"  {PROG} export -o sessions.jsonl\n"
            f"  {PROG} migrate --from-layout sdk sqlite:///conversations.db "
            "redis://localhost:6379/0\n"
            "\n"
            "exit codes: 0 success, 1 operational error, 2 usage error"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _url_option(parser, default=None)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # `--url` is accepted after the command too; SUPPRESS keeps the global value otherwise.
    def command(
        name: str,
        handler: str,
        summary: str | None = None,
        description: str | None = None,
        *,
        epilog: str | None = None,
        opens_store: bool = True,
    ) -> argparse.ArgumentParser:
        if summary is None:  # added without `help`, a command is left out of the listing
            sub = commands.add_parser(name)
        elif epilog is None:
            sub = commands.add_parser(name, help=summary, description=description or summary)
        else:  # an epilog laid out by hand: keep its lines, wrap the description here
            sub = commands.add_parser(
                name,
                help=summary,
                description=textwrap.fill(description or summary, HELP_WIDTH),
                epilog=epilog,
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
        if opens_store:
            _url_option(sub, default=argparse.SUPPRESS)
        sub.set_defaults(handler=handler, opens_store=opens_store)
        return sub

    demo = command(
        "demo",
        "demo:run_demo",
        "run a scripted agent in two processes and show what was stored",
        (
            "Run a weather agent through agents.Runner with the SDK's scripted model (no API "
            "key, no network), then a second process that resumes the same session and "
            "shows that its model saw the first run's history. Prints the conversation."
        ),
    )
    demo.add_argument("--session", metavar="ID", help="session id to use (default: demo-<random>)")

    listing = command(
        "list",
        "inspect:run_list",
        "list sessions, most recently updated first",
        "List sessions, most recently updated first, with their size, times and metadata.",
    )
    listing.add_argument(
        "--limit",
        type=_positive_int,
        default=50,
        metavar="N",
        help="show at most N sessions (default: 50)",
    )
    listing.add_argument(
        "--meta",
        type=_meta_pair,
        action="append",
        metavar="KEY=VALUE",
        help="only sessions whose metadata has this pair (repeatable; all must match)",
    )
    listing.add_argument("--json", action="store_true", help="print a JSON array")

    show = command(
        "show",
        "inspect:run_show",
        "print a session's conversation",
        "Print a session's conversation: user, assistant, tool calls and outputs.",
    )
    show.add_argument("session_id", metavar="ID", help="the session to show")
    show.add_argument("--last", type=_positive_int, metavar="N", help="only the newest N items")
    show.add_argument("--json", action="store_true", help="print the items as a JSON array")

    export = command(
        "export",
        "transfer:run_export",
        "write sessions as JSON Lines",
        (
            "Write sessions as JSON Lines, one session per line: session_id, created_at, "
            "updated_at, expires_at (ISO 8601, UTC), metadata and items. Without IDs every "
            "session is written, the least recently updated first."
        ),
    )
    export.add_argument("session_ids", nargs="*", metavar="ID", help="sessions to export")
    export.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write to FILE (replaced when complete) instead of standard output",
    )

    import_ = command(
        "import",
        "transfer:run_import",
        "read sessions from a JSON Lines file (as export writes it)",
        (
            "Read sessions from JSON Lines as `export` writes them. Each session is validated "
            "whole, then written in one atomic step: a session the store already holds with "
            "the same items and metadata is left alone, one that differs is replaced, so "
            "importing a file twice changes nothing. A malformed line is refused (its line "
            "number on stderr) and nothing of it is written; the other lines are imported "
            "and the exit code is 1. A session keeps its expires_at; creation and update "
            "times become those of the import."
        ),
    )
    import_.add_argument("file", metavar="FILE", help="the file to read; - for standard input")

    migrate = command(
        "migrate",
        "migrate:run_migrate",
        "copy every session to another store, verified and resumable",
        (
            "Copy every session from SRC_URL to DST_URL (any store URL), with a progress bar "
            "on a terminal and plain progress lines otherwise. Each session is written whole "
            "in one atomic step, then read back and verified (item count and content digest). "
            "Resumable: run the same command again after an interruption and it skips the "
            "sessions the destination already holds unchanged, replaces any that differ, and "
            "copies the rest; nothing is copied twice. The source is only read."
        ),
        epilog=MIGRATE_EPILOG,
        opens_store=False,
    )
    migrate.add_argument("src_url", metavar="SRC_URL", help="where the sessions are")
    migrate.add_argument("dst_url", metavar="DST_URL", help="the store to copy them to")
    migrate.add_argument(
        "--from-layout",
        choices=LAYOUTS,
        default="own",
        metavar="LAYOUT",
        help=f"how SRC_URL stores sessions: {', '.join(LAYOUTS)} (default: own; see below)",
    )

    delete = command("delete", "admin:run_delete", "delete a session")
    delete.add_argument("session_id", metavar="ID", help="the session to delete")

    command(
        "purge",
        "admin:run_purge",
        "remove what expired sessions left behind",
        (
            "Remove expired sessions and print how many were removed. (Redis expires a "
            "session's keys by itself; purge cleans the listing index. SQLite keeps expired "
            "rows, unseen, until a purge or a write to the same session removes them.)"
        ),
    )

    stats = command(
        "stats",
        "admin:run_stats",
        "count sessions, items and bytes",
        (
            "Count live sessions, their items and stored bytes; show the oldest and newest "
            "update and how many sessions expire within the hour. Reads every item to count "
            "its bytes."
        ),
    )
    stats.add_argument("--json", action="store_true", help="print a JSON object")

    # The demo's second process: not listed in the help.
    resume = command("demo-resume", "demo:run_demo_resume")
    resume.add_argument("session_id")
    return parser


# -- running ---------------------------------------------------------------------------------


def _handler(target: str) -> Handler:
    # Command modules load on use: `list` never imports the demo's agent and tool.
    module_name, _, name = target.partition(":")
    module = importlib.import_module(f"{__package__}.{module_name}")
    handler: Handler = getattr(module, name)
    return handler


async def _run(args: argparse.Namespace, url: str, out: Output) -> int:
    handler = _handler(args.handler)
    ctx = Context(url=url, url_given=args.url is not None, out=out)
    try:
        if getattr(args, "opens_store", True):
            ctx.store  # noqa: B018 - opens it now: a bad URL fails before any output
        return await handler(ctx, args)
    finally:
        await ctx.aclose()


def _exit_code(code: object) -> int:
    if code is None:
        return EXIT_OK
    return code if isinstance(code, int) else EXIT_ERROR


def _message(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    for stream in (sys.stdout, sys.stderr):
        # Session content may hold any character; a terminal that cannot show one gets "?"
        # rather than a UnicodeEncodeError halfway through a conversation.
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or argparse's own usage error
        return _exit_code(exc.code)
    url: str = args.url or os.environ.get(URL_ENV) or DEFAULT_URL
    # Commands may name more stores than --url (migrate names two): none may leak.
    more_urls = [getattr(args, name, None) for name in ("src_url", "dst_url")]
    scrub = Scrubber(url, *(u for u in more_urls if isinstance(u, str)))
    err = sys.stderr

    def fail(message: str, code: int) -> int:
        err.write(scrub(f"{PROG}: error: {message}") + "\n")
        return code

    try:
        return asyncio.run(_run(args, url, Output(sys.stdout)))
    except (UsageError, ConfigurationError) as exc:
        return fail(_message(exc), EXIT_USAGE)
    except CommandError as exc:
        return fail(_message(exc), EXIT_ERROR)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's final flush of
        # stdout from reporting the same broken pipe again.
        _silence_stdout()
        return EXIT_ERROR
    except OPERATIONAL_ERRORS as exc:
        detail = _message(exc)
        if not isinstance(exc, SessionError):
            detail = f"{mask_url(url)}: {detail}"
        return fail(detail, EXIT_ERROR)
    except KeyboardInterrupt:
        err.write("\n")
        return 130
    except Exception as exc:
        # A bug: keep the traceback for the report, but never with the password in it.
        err.write(scrub("".join(traceback.format_exception(exc))))
        return EXIT_ERROR


def _silence_stdout(stdout: TextIO | None = None) -> None:
    stream = stdout or sys.stdout
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
    except (OSError, ValueError):
        pass
