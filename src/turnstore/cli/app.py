"""The command line: argument parsing, dispatch, the time budget, and exit codes.

Exit codes: 0 success; 1 operational error (the store failed, a session is missing, or the
command ran out of time: one message on stderr, no traceback); 2 usage error (bad arguments,
URL or option). A password in a store URL never reaches stdout or stderr: messages go
through `Scrubber` first. Nothing here imports the SDK or a backend: a command module is
imported when its command runs, and a backend when its URL is opened.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import importlib
import os
import re
import sys
import textwrap
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn, TextIO

from .. import __version__
from ..backend import watch_answers
from ..errors import ConfigurationError
from ..store import DEFAULT_URL
from .context import DEFAULT_TIMEOUT, CommandError, Context, UsageError
from .failures import Scrubber, describe, is_operational
from .render import Output

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
PROG = "turnstore"
#: Width of hand-wrapped help text.
HELP_WIDTH = 88
URL_ENV = "TURNSTORE_URL"
#: Seconds a stopped command gets to unwind (and the store to close) before the process ends.
GRACE = 2.0
#: Layouts `migrate --from-layout` reads (the readers are in turnstore.migration).
LAYOUTS = ("own", "sdk", "openai-agents-redis")

Handler = Callable[[Context, argparse.Namespace], Awaitable[int]]

MIGRATE_EPILOG = """\
source layouts (--from-layout):
  own                  this package's own layout, at any store URL (the default)
  sdk                  what the Agents SDK's own sessions wrote:
                         sqlite:///path.db  tables agent_sessions and agent_messages of
                           SQLiteSession, opened read-only; metadata and expiry times too
                           when this package also wrote to the file
                           (?sessions_table=...&messages_table=... if it used others)
                         redis://..., redis+cluster://..., redis+sentinel://...
                           keys of agents.extensions.memory.RedisSession: hash
                           {key_prefix}:{id} and list {key_prefix}:{id}:messages, found with
                           SCAN; ?key_prefix=... (default: agents:session)
  openai-agents-redis  keys of the openai-agents-redis package: hash agent_session:{id}
                       (session_id, created_at, updated_at) and list agent_messages:{id} of
                       JSON strings, found with SCAN (?session_prefix=...&messages_prefix=...
                       if it used others)
  Keys are found with SCAN, never KEYS; on Redis Cluster every primary is scanned. Other
  fields of a Redis session hash are carried as metadata.

A source item that cannot be decoded, or a part of a session that cannot be carried, is
reported (session and what) and counted; it stays in the source and the rest of its session
is copied. Sessions keep their metadata and their creation, update and expiry times. They
are copied the least recently updated first.

examples:
  turnstore migrate sqlite:///turnstore.db redis://localhost:6379/0
  turnstore migrate --from-layout sdk sqlite:///conversations.db redis://localhost:6379/0
  turnstore migrate --dry-run --from-layout sdk sqlite:///conversations.db redis://localhost:6379/0
  turnstore migrate --from-layout openai-agents-redis redis://old:6379/0 \\
      redis://new:6379/0

exit codes: 0 every session copied and verified; 1 a corrupt source item, a session not
copied whole or failing verification, or an operational error; 2 usage error; 130
interrupted (rerun the same command to resume)"""


# -- a parser that helps -----------------------------------------------------------------------


def _suggestion(word: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


_INVALID_CHOICE = re.compile(
    r"argument (?P<arg>[^:]+): invalid choice: (?P<q>['\"]?)(?P<word>.*?)(?P=q) \(choose from"
)


class ForgivingParser(argparse.ArgumentParser):
    """argparse, answering a mistake with this command's usage and a "did you mean"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: Every argument added to this parser, as `add_argument` returned it (an option
        #: added to a group is recorded by whoever adds it): the table that suggestions and
        #: the completion scripts are made from.
        self.registered: list[argparse.Action] = []
        #: The commands listed in the help (hidden ones are not suggested either), and the
        #: parser of every command, hidden ones included.
        self.visible_commands: tuple[str, ...] = ()
        self.subcommands: dict[str, ForgivingParser] = {}
        #: The arguments being parsed (set by `parse`), for the hint about a stray option.
        self.typed: list[str] = []
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.registered.append(action)
        return action

    def option_strings(self) -> list[str]:
        return [s for action in self.registered for s in action.option_strings]

    def _stray_option(self, command_word: str) -> str | None:
        """An option this parser does not know, typed before `command_word`.

        argparse sets an unknown option aside and takes its value (`--tiemout 3`) for the
        command, so the option is what the operator got wrong, not the command.
        """
        before = self.typed[: self.typed.index(command_word)] if command_word in self.typed else []
        known = self.option_strings()
        for word in before:
            name = word.split("=", 1)[0]
            # argparse takes a unique prefix of an option for the option (--time).
            if name.startswith("-") and not any(option.startswith(name) for option in known):
                return name
        return None

    def error(self, message: str) -> NoReturn:
        found = _INVALID_CHOICE.match(message)
        if found is not None and found["arg"] == "COMMAND":
            word = found["word"]
            stray = self._stray_option(word)
            if stray is not None:
                message = (
                    f"unrecognized option {stray!r}{_suggestion(stray, self.option_strings())}"
                )
            else:
                message = (
                    f"unknown command {word!r}{_suggestion(word, self.visible_commands)} "
                    f"(commands: {', '.join(self.visible_commands)})"
                )
        elif found is not None:
            arg = found["arg"]
            action = next(
                (
                    a
                    for a in self.registered
                    if arg in ("/".join(a.option_strings), a.metavar, a.dest)
                ),
                None,
            )
            choices = [str(c) for c in (action.choices or ())] if action else []
            if choices:
                message = (
                    f"argument {found['arg']}: invalid choice: {found['word']!r}"
                    f"{_suggestion(found['word'], choices)} (choose from {', '.join(choices)})"
                )
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")

    def unknown_options(self, extras: Sequence[str]) -> NoReturn:
        """Refuse arguments this command does not take, suggesting the closest option."""
        options = self.option_strings()
        hint = ""
        for extra in extras:
            if extra.startswith("-"):
                hint = _suggestion(extra.split("=", 1)[0], options)
                if hint:
                    break
        self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def _meta_pair(text: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if not eq or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return key, value


_AGE_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _age(text: str) -> float:
    """`30d`, `12h`, `90m`, `45s`, `2w` as seconds."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*", text)
    if found is None:
        raise argparse.ArgumentTypeError(
            f"expected an age like 30d, 12h, 90m, 45s or 2w, not {text!r}"
        )
    return float(found[1]) * _AGE_UNITS[found[2]]


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """`--url`, `--timeout` and `--json`, before the command or after it.

    After the command they default to SUPPRESS, which keeps a value given before it.
    """

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    parser.add_argument(
        "--url",
        metavar="URL",
        default=default(None),
        help=f"store URL (default: ${URL_ENV}, else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        metavar="S",
        default=default(DEFAULT_TIMEOUT),
        help=(
            "give up after S seconds without an answer from the store "
            f"(default: {DEFAULT_TIMEOUT:g})"
        ),
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print JSON (the shape of each command is in docs/cli.md)",
    )


def build_parser() -> ForgivingParser:
    parser = ForgivingParser(
        prog=PROG,
        description=textwrap.fill(
            "Run the demo; list, show, export, import, migrate, delete and purge the sessions "
            "of a turnstore store.",
            HELP_WIDTH,
        ),
        epilog=(
            "examples:\n"
            f"  {PROG} demo\n"
            f"  {PROG} list --meta user_id=u1\n"
            f"  {PROG} --url redis://localhost:6379/0 show SESSION_ID --last 20\n"
            f"  {PROG} delete --older-than 30d --dry-run\n"
            f"  {PROG} export -o sessions.jsonl\n"
            f"  {PROG} migrate --from-layout sdk sqlite:///conversations.db "
            "redis://localhost:6379/0\n"
            f"  source <({PROG} completion bash)\n"
            "\n"
            "exit codes: 0 success, 1 operational error, 2 usage error"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_options(parser, top=True)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    visible: list[str] = []

    def command(
        name: str,
        handler: str,
        summary: str | None = None,
        description: str | None = None,
        *,
        epilog: str | None = None,
        opens_store: bool = True,
        read_only: bool = False,
    ) -> ForgivingParser:
        sub: ForgivingParser
        if summary is None:  # added without `help`, a command is left out of the listing
            sub = commands.add_parser(name)
        else:
            visible.append(name)
            sub = commands.add_parser(
                name,
                help=summary,
                description=textwrap.fill(description or summary, HELP_WIDTH),
                epilog=epilog,
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
        _global_options(sub, top=False)
        sub.set_defaults(handler=handler, opens_store=opens_store, read_only=read_only)
        parser.subcommands[name] = sub
        return sub

    demo = command(
        "demo",
        "demo:run_demo",
        "run a scripted agent in two processes and show what was stored",
        (
            "Run a weather agent through agents.Runner with the SDK's scripted model (no API "
            "key, no network), then a second process that resumes the same session and "
            "shows that its model saw the whole history. Prints the conversation. Running it "
            "again with the same --session continues that conversation."
        ),
    )
    demo.add_argument("--session", metavar="ID", help="session id to use (default: demo-<random>)")

    listing = command(
        "list",
        "inspect:run_list",
        "list sessions, most recently updated first",
        (
            "List sessions, most recently updated first, with their size, times and metadata. "
            "A page ends with the cursor of the next one; --all lists every page."
        ),
        read_only=True,
    )
    listing.add_argument(
        "--limit",
        type=_positive_int,
        default=50,
        metavar="N",
        help="show at most N sessions per page (default: 50)",
    )
    listing.add_argument(
        "--meta",
        type=_meta_pair,
        action="append",
        metavar="KEY=VALUE",
        help="only sessions whose metadata has this pair (repeatable; all must match)",
    )
    pages = listing.add_mutually_exclusive_group()
    listing.registered += [
        pages.add_argument("--cursor", metavar="C", help="the page after cursor C (as printed)"),
        pages.add_argument("--all", action="store_true", help="every session, page after page"),
    ]

    show = command(
        "show",
        "inspect:run_show",
        "print a session's conversation",
        (
            "Print a session's conversation: user, assistant, tool calls and outputs. Long "
            "texts and tool outputs are cut (the cut size is shown) unless --full. --follow "
            "keeps printing new items as they arrive, until Ctrl-C."
        ),
        read_only=True,
    )
    show.add_argument("session_id", metavar="ID", help="the session to show")
    show.add_argument("--last", type=_positive_int, metavar="N", help="only the newest N items")
    show.add_argument("--full", action="store_true", help="never cut long texts")
    show.add_argument(
        "--follow", "-f", action="store_true", help="print new items as they arrive (Ctrl-C ends)"
    )

    export = command(
        "export",
        "transfer:run_export",
        "write sessions as JSON Lines",
        (
            "Write sessions as JSON Lines, one session per line: session_id, created_at, "
            "updated_at, expires_at (ISO 8601, UTC), metadata and items. Without IDs every "
            "session is written, the least recently updated first."
        ),
        read_only=True,
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
            "and the exit code is 1. A session keeps its times and its expires_at."
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
            "copies the rest; nothing is copied twice. The source is only read. --timeout "
            "bounds each session's copy, not the whole migration."
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
    migrate.add_argument(
        "--dry-run",
        action="store_true",
        help="read the source and say what would be copied; write nothing",
    )

    delete = command(
        "delete",
        "admin:run_delete",
        "delete sessions by id, metadata or age",
        (
            "Delete the named sessions, or every session matching --meta and --older-than "
            "(all given conditions must match; with IDs, they narrow the named ones). "
            "--dry-run says what would be deleted."
        ),
    )
    delete.add_argument("session_ids", nargs="*", metavar="ID", help="sessions to delete")
    delete.add_argument(
        "--meta",
        type=_meta_pair,
        action="append",
        metavar="KEY=VALUE",
        help="only sessions whose metadata has this pair (repeatable)",
    )
    delete.add_argument(
        "--older-than",
        type=_age,
        metavar="AGE",
        help="only sessions last updated longer ago than AGE (30d, 12h, 90m, 45s, 2w)",
    )
    delete.add_argument("--dry-run", action="store_true", help="count, delete nothing")

    purge = command(
        "purge",
        "admin:run_purge",
        "remove what expired sessions left behind",
        (
            "Remove expired sessions and print how many were removed. (Redis expires a "
            "session's keys by itself; purge cleans the listing index. SQLite keeps expired "
            "rows, unseen, until a purge or a write to the same session removes them.)"
        ),
    )
    purge.add_argument("--dry-run", action="store_true", help="count, remove nothing")

    command(
        "stats",
        "admin:run_stats",
        "count sessions and items",
        (
            "Count live sessions and their items; show the oldest and newest update and how "
            "many sessions expire within the hour. Reads the listing, never the items."
        ),
        read_only=True,
    )

    command(
        "reindex",
        "admin:run_reindex",
        "rebuild the metadata index after index_metadata changed",
        (
            "Rebuild the index of the metadata keys named by the store's index_metadata "
            "option (for example ?index_metadata=user_id,tenant) and print how many sessions "
            "were indexed. Resumable."
        ),
    )

    completion = command(
        "completion",
        "completion:run_completion",
        "print a shell completion script (bash or zsh)",
        (
            "Print a completion script: `source <(turnstore completion bash)` in ~/.bashrc, "
            "or `source <(turnstore completion zsh)` in ~/.zshrc. Commands and options are "
            "completed at once; session ids are asked of the store (with a short timeout)."
        ),
        opens_store=False,
    )
    completion.add_argument("shell", choices=("bash", "zsh"), help="the shell")

    # Not listed in the help: the demo's second process, and the completion scripts' helper.
    resume = command("demo-resume", "demo:run_demo_resume")
    resume.add_argument("session_id")
    ids = command("complete-ids", "completion:run_complete_ids", read_only=True)
    ids.add_argument("prefix", nargs="?", default="")

    parser.visible_commands = tuple(visible)
    return parser


# -- running -----------------------------------------------------------------------------------


class TimedOut(Exception):
    """The command went `timeout` seconds without progress, waiting for the store `where`."""

    def __init__(self, seconds: float, where: str, *, unwound: bool) -> None:
        super().__init__(seconds)
        self.seconds = seconds
        self.where = where
        #: False when the command did not stop when asked: the process must end now.
        self.unwound = unwound


def _handler(target: str) -> Handler:
    # Command modules load on use: `list` never imports the demo's agent and tool.
    module_name, _, name = target.partition(":")
    module = importlib.import_module(f"{__package__}.{module_name}")
    handler: Handler = getattr(module, name)
    return handler


async def _invoke(ctx: Context, args: argparse.Namespace, handler: Handler) -> int:
    if args.opens_store:
        ctx.store  # noqa: B018 - opens it now: a bad URL fails before any output
    return await handler(ctx, args)


async def _run(ctx: Context, args: argparse.Namespace) -> int:
    """Run the command; stop it once `ctx.timeout` seconds pass without progress.

    Progress is every answer a store gives (`request_answered`: a page, a batch, a
    transaction) and every step a command reports itself: a purge of a million sessions
    runs as long as each of its requests is answered in time, and a server that stops
    answering ends the command `timeout` seconds after its last answer.
    """
    loop = asyncio.get_running_loop()
    handler = _handler(args.handler)  # imported before the clock starts (the demo's SDK)
    ctx.progress()
    with watch_answers(ctx.progress):  # the task keeps the listener: it starts in here
        task = asyncio.ensure_future(_invoke(ctx, args, handler))
    try:
        while True:
            remaining = ctx.deadline - loop.time()
            if remaining <= 0:
                break
            done, _ = await asyncio.wait({task}, timeout=remaining)
            if done:
                return task.result()
        where = ctx.waited_for()  # before the command unwinds and stops waiting
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=GRACE)
        if done and not task.cancelled():
            # It ended by itself as the deadline passed (the store's budget is the same
            # --timeout): the timeout is what is reported, and its own outcome is consumed
            # so that asyncio does not print it as "Task exception was never retrieved".
            task.exception()
        raise TimedOut(ctx.timeout, where, unwound=bool(done))
    except asyncio.CancelledError:
        task.cancel()  # Ctrl-C: asyncio.run cancels us; the command stops with us
        raise
    finally:
        if task.done():
            # The command's own outcome is what is reported, not a failure to close after it.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ctx.aclose(), GRACE)


def _exit_code(code: object) -> int:
    if code is None:
        return EXIT_OK
    return code if isinstance(code, int) else EXIT_ERROR


def _message(exc: BaseException) -> str:
    return str(exc).strip() or type(exc).__name__


def parse(parser: ForgivingParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse; an option the command does not take is refused by the command's own parser."""
    parser.typed = list(sys.argv[1:] if argv is None else argv)
    args, extras = parser.parse_known_args(parser.typed)
    if extras:
        owner = parser.subcommands.get(getattr(args, "command", None) or "", parser)
        owner.unknown_options(extras)
    return args


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
        args = parse(parser, argv)
    except SystemExit as exc:  # --help, --version, or a usage error
        return _exit_code(exc.code)
    url: str = args.url or os.environ.get(URL_ENV) or DEFAULT_URL
    # Commands may name more stores than --url (migrate names two): none may leak.
    more_urls = [getattr(args, name, None) for name in ("src_url", "dst_url")]
    scrub = Scrubber(url, *(u for u in more_urls if isinstance(u, str)))
    err = sys.stderr
    ctx = Context(
        url=url,
        url_given=args.url is not None,
        out=Output(sys.stdout),
        read_only=args.read_only,
        timeout=args.timeout,
        json=args.json,
    )

    def fail(message: str, code: int) -> int:
        sys.stdout.flush()
        err.write(scrub(f"{PROG}: error: {message}") + "\n")
        err.flush()
        return code

    try:
        return asyncio.run(_run(ctx, args))
    except (UsageError, ConfigurationError) as exc:
        return fail(_message(exc), EXIT_USAGE)
    except CommandError as exc:
        return fail(_message(exc), EXIT_ERROR)
    except TimedOut as exc:
        code = fail(
            f"{exc.where}: no answer within {exc.seconds:g} s (--timeout {exc.seconds:g})",
            EXIT_ERROR,
        )
        if not exc.unwound:
            # The command ignored its cancellation (a driver stuck in a blocking call): do
            # not wait for it at exit.
            os._exit(code)
        return code
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's final flush of
        # stdout from reporting the same broken pipe again.
        _silence_stdout()
        return EXIT_ERROR
    except KeyboardInterrupt:
        if getattr(args, "follow", False):
            return EXIT_OK  # Ctrl-C is how `show --follow` ends
        err.write("\n")
        return 130
    except Exception as exc:
        if is_operational(exc):
            return fail(describe(exc, url), EXIT_ERROR)
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
