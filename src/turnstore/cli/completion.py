"""`completion bash|zsh`: shell completion scripts, and the hidden `complete-ids` they call.

Commands and options come from the parser's own table of what was registered, written into
the script, so they are completed without starting Python. Session ids (after `show`,
`delete`, `export`) are asked of the store with `complete-ids`, which reads one page of the
listing with a 2 s timeout: cheap, and never an error on the command line being typed.

bash cuts the words it hands a completion function at every character of
`COMP_WORDBREAKS`, `:` and `=` included, so `--url sqlite:///x.db` arrives as four words;
the script cuts the line again itself, at blanks only, and hands bash back only the part of
a completed word after its last break character (the part bash replaces). zsh runs the same
function through `bashcompinit`, with its own (uncut) words.

`completion SHELL --json` prints `{"shell": SHELL, "script": TEXT}`.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .context import Context

if TYPE_CHECKING:
    from .app import ForgivingParser

__all__ = ["ID_COMMANDS", "bash_script", "run_complete_ids", "run_completion"]

#: Session ids offered at most (the most recently updated).
ID_LIMIT = 200
#: Commands whose positional arguments are session ids.
ID_COMMANDS = ("show", "delete", "export")

_BASH = r"""# turnstore completion for bash; add to ~/.bashrc:  source <(turnstore completion bash)
_turnstore() {
    local -a typed
    if [[ "${COMP_WORDBREAKS-}" == *[:=]* && -n "${COMP_LINE-}" ]]; then
        # bash cut the line at ':' and '=' as well (a URL became several words): cut the
        # line up to the cursor again, at blanks only.
        local line="${COMP_LINE:0:$COMP_POINT}"
        read -r -a typed <<< "$line"
        if [[ -z "$line" || "$line" == *[[:blank:]] ]]; then
            typed+=("")
        fi
    else
        typed=("${COMP_WORDS[@]:0:$((COMP_CWORD + 1))}")
    fi
    local cword=$((${#typed[@]} - 1))
    local cur="${typed[$cword]}" prev="" cmd="" url="" word i
    if ((cword > 0)); then
        prev="${typed[$((cword - 1))]}"
    fi
    for ((i = 1; i < cword; i++)); do
        word="${typed[$i]}"
        case "$word" in
            --url=*) url="${word#--url=}" ;;
            --url)
                if ((i + 1 < cword)); then
                    url="${typed[$((i + 1))]}"
                fi
                ((i++)) ;;
            __VALUED__) ((i++)) ;;
            -*) ;;
            *) [[ -z "$cmd" ]] && cmd="$word" ;;
        esac
    done
    local prefix="" option="" opts=""
    local -a found=()
    if [[ "$cur" == --*=* ]]; then
        option="${cur%%=*}"
        prefix="$option="
        cur="${cur#*=}"
    else
        case "$prev" in
            __VALUED__) option="$prev" ;;
        esac
    fi
    if [[ -n "$option" ]]; then
        case "$option" in
            --from-layout) found=($(compgen -W "__LAYOUTS__" -- "$cur")) ;;
            -o|--output) found=($(compgen -f -- "$cur")) ;;
        esac
    elif [[ "$cur" == -* ]]; then
        case "$cmd" in
            "") opts="__GLOBAL__" ;;
__CASES__
        esac
        found=($(compgen -W "$opts" -- "$cur"))
    elif [[ -z "$cmd" ]]; then
        found=($(compgen -W "__COMMANDS__" -- "$cur"))
    else
        case "$cmd" in
            __ID_COMMANDS__)
                local ids
                ids="$("${typed[0]}" ${url:+--url "$url"} --timeout 2 \
                    complete-ids "$cur" 2>/dev/null)"
                found=($(compgen -W "$ids" -- "$cur")) ;;
            completion) found=($(compgen -W "bash zsh" -- "$cur")) ;;
            import) found=($(compgen -f -- "$cur")) ;;
        esac
    fi
    # bash replaces only the part of the word after its last break character (the text
    # after "sqlite:" or "--from-layout="): drop what comes before from every answer.
    local whole="$prefix$cur" before="" j
    if [[ -n "${COMP_WORDBREAKS-}" ]]; then
        for ((j = ${#whole} - 1; j >= 0; j--)); do
            if [[ "$COMP_WORDBREAKS" == *"${whole:$j:1}"* ]]; then
                before="${whole:0:$((j + 1))}"
                break
            fi
        done
    fi
    COMPREPLY=()
    for word in "${found[@]}"; do
        word="$prefix$word"
        COMPREPLY+=("${word#"$before"}")
    done
}
complete -F _turnstore turnstore
"""

_ZSH_PRELUDE = """\
# turnstore completion for zsh; add to ~/.zshrc:  source <(turnstore completion zsh)
autoload -U +X compinit && { (( ${+_comps} )) || compinit; }
autoload -U +X bashcompinit && bashcompinit
"""


def _long_options(parser: ForgivingParser) -> list[str]:
    return [option for option in parser.option_strings() if option.startswith("--")]


def _valued_options(parser: ForgivingParser) -> list[str]:
    """Every option of the parser and its commands that is followed by a value."""
    found: dict[str, None] = {}
    for each in (parser, *parser.subcommands.values()):
        for action in each.registered:
            if action.option_strings and action.nargs != 0:
                found.update(dict.fromkeys(action.option_strings))
    return list(found)


def bash_script(parser: ForgivingParser) -> str:
    """The bash completion script for `parser` (the `turnstore` parser)."""
    from .app import LAYOUTS

    cases = "\n".join(
        f"            {name}) opts='{' '.join(_long_options(parser.subcommands[name]))}' ;;"
        for name in parser.visible_commands
    )
    return (
        _BASH.replace("__COMMANDS__", " ".join(parser.visible_commands))
        .replace("__GLOBAL__", " ".join(_long_options(parser)))
        .replace("__VALUED__", "|".join(_valued_options(parser)))
        .replace("__LAYOUTS__", " ".join(LAYOUTS))
        .replace("__ID_COMMANDS__", "|".join(ID_COMMANDS))
        .replace("__CASES__", cases)
    )


def completion_script(shell: str) -> str:
    """The completion script for `shell` ("bash" or "zsh")."""
    from .app import build_parser

    script = bash_script(build_parser())
    return _ZSH_PRELUDE + script if shell == "zsh" else script


async def run_completion(ctx: Context, args: argparse.Namespace) -> int:
    """Print the completion script for `args.shell` (in an object with `--json`)."""
    script = completion_script(args.shell)
    if ctx.json:
        ctx.out.json({"shell": args.shell, "script": script})
    else:
        ctx.out.line(script.rstrip("\n"))
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
