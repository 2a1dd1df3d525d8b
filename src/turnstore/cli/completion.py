"""`completion bash|zsh`: shell completion scripts, and the hidden `complete-ids` they call.

Commands and options come from the parser itself, written into the script, so they are
completed without starting Python. Session ids (after `show`, `delete`, `export`) are asked
of the store with `complete-ids`, which reads one page of the listing with a 2 s timeout:
cheap, and never an error on the command line being typed.
"""

from __future__ import annotations

import argparse
import shlex

from .context import Context

__all__ = ["bash_script", "run_complete_ids", "run_completion"]

#: Session ids offered at most (the most recently updated).
ID_LIMIT = 200
#: Commands whose positional arguments are session ids.
ID_COMMANDS = ("show", "delete", "export")

_BASH = r"""# turnstore completion for bash; add to ~/.bashrc:  source <(turnstore completion bash)
_turnstore() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    local cmd="" url="" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            --url) url="${COMP_WORDS[i+1]}"; ((i++)) ;;
            --timeout) ((i++)) ;;
            -*) ;;
            *) [[ -z "$cmd" ]] && cmd="${COMP_WORDS[i]}" ;;
        esac
    done
    case "$prev" in
        --url|--timeout|--limit|--cursor|--meta|--last|--older-than|-o|--output) return ;;
        --from-layout) COMPREPLY=($(compgen -W "__LAYOUTS__" -- "$cur")); return ;;
    esac
    if [[ -z "$cmd" ]]; then
        COMPREPLY=($(compgen -W "__COMMANDS__ __GLOBAL__" -- "$cur"))
        return
    fi
    local opts=""
    case "$cmd" in
__CASES__
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi
    case "$cmd" in
        __ID_COMMANDS__)
            local ids
            ids="$("${COMP_WORDS[0]}" ${url:+--url "$url"} --timeout 2 \
                complete-ids "$cur" 2>/dev/null)"
            COMPREPLY=($(compgen -W "$ids" -- "$cur")) ;;
        completion) COMPREPLY=($(compgen -W "bash zsh" -- "$cur")) ;;
        import) COMPREPLY=($(compgen -f -- "$cur")) ;;
    esac
}
complete -F _turnstore turnstore
"""

_ZSH_PRELUDE = """\
# turnstore completion for zsh; add to ~/.zshrc:  source <(turnstore completion zsh)
autoload -U +X bashcompinit && bashcompinit
"""


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [s for action in parser._actions for s in action.option_strings if s.startswith("--")]


def bash_script(parser: argparse.ArgumentParser) -> str:
    """The bash completion script for `parser` (the `turnstore` parser)."""
    subcommands: dict[str, argparse.ArgumentParser] = parser.subcommands  # type: ignore[attr-defined]
    visible: tuple[str, ...] = parser.visible_commands  # type: ignore[attr-defined]
    cases = "\n".join(
        f"        {name}) opts={shlex.quote(' '.join(_options(subcommands[name])))} ;;"
        for name in visible
    )
    layouts = next(
        (
            " ".join(str(c) for c in action.choices or ())
            for action in subcommands["migrate"]._actions
            if "--from-layout" in action.option_strings
        ),
        "",
    )
    return (
        _BASH.replace("__COMMANDS__", " ".join(visible))
        .replace("__GLOBAL__", " ".join(_options(parser)))
        .replace("__LAYOUTS__", layouts)
        .replace("__ID_COMMANDS__", "|".join(ID_COMMANDS))
        .replace("__CASES__", cases)
    )


async def run_completion(ctx: Context, args: argparse.Namespace) -> int:
    """Print the completion script for `args.shell`."""
    from .app import build_parser

    script = bash_script(build_parser())
    ctx.out.line((_ZSH_PRELUDE + script if args.shell == "zsh" else script).rstrip("\n"))
    return 0


async def run_complete_ids(ctx: Context, args: argparse.Namespace) -> int:
    """Print the ids (newest first, one a line) of recent sessions starting with a prefix."""
    if ctx.missing_database() is not None:
        return 0
    page = await ctx.store.list_sessions(limit=ID_LIMIT)
    for info in page.sessions:
        if info.session_id.startswith(args.prefix):
            ctx.out.line(info.session_id)
    return 0
