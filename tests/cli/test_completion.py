"""Shell completion: the scripts `turnstore completion bash|zsh` print, run by real shells.

Most cases call the bash function as bash itself would: `COMP_LINE` and `COMP_POINT`, and
`COMP_WORDS` cut at blanks and at the characters of bash's default `COMP_WORDBREAKS`
(`--url sqlite:///x.db` is four words). One case of each shell types the line into an
interactive shell on a pseudo-terminal, presses Tab, and reads back the completed line.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.support import CONVERSATION, cli_env, run_cli, seed, sqlite_url_for

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
needs_zsh = pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")

#: bash's default COMP_WORDBREAKS, less the blanks.
BREAKS = "\"'><=;|&(:"
_BASH_WORD = re.compile(rf"[^\s{re.escape(BREAKS)}]+|[{re.escape(BREAKS)}]+")


def bash_words(line: str) -> list[str]:
    """`line` cut into COMP_WORDS as bash cuts it (checked against an interactive bash by
    `test_interactive_bash_completes_an_id_after_a_sqlite_url`): at blanks, and each run of
    break characters a word of its own; a line ending in a blank ends with an empty word."""
    words = _BASH_WORD.findall(line)
    if not line or line[-1].isspace():
        words.append("")
    return words


def shell_env() -> dict[str, str]:
    # The script runs the CLI as it was typed: put this interpreter's `turnstore` first.
    return cli_env({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})


def complete(line: str, cwd: Path) -> list[str]:
    """What the bash completion function answers for `line` (the cursor at its end)."""
    script = run_cli("completion", "bash", cwd=cwd).stdout
    words = bash_words(line)
    quoted = " ".join("'" + word.replace("'", "'\\''") + "'" for word in words)
    escaped_line = line.replace("'", "'\\''")
    driver = (
        f"{script}\n"
        f"COMP_LINE='{escaped_line}'; COMP_POINT={len(line)}\n"
        f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}\n"
        "_turnstore; printf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    result = subprocess.run(
        ["bash", "-c", driver],
        cwd=cwd,
        env=shell_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [word for word in result.stdout.splitlines() if word]


@pytest.fixture
def ids_db(tmp_path: Path) -> str:
    url = sqlite_url_for(tmp_path / "ids.db")
    seed(url, [("alpha-1", CONVERSATION, {}), ("alpha-2", CONVERSATION, {})])
    seed(url, [("beta", CONVERSATION, {}), ("user:42", CONVERSATION, {})])
    return url


def test_bash_words_cut_a_url_as_bash_does() -> None:
    assert bash_words("turnstore --url=sqlite:///x.db show s") == [
        "turnstore",
        "--url",
        "=",
        "sqlite",
        ":",
        "///x.db",
        "show",
        "s",
    ]


@needs_bash
def test_bash_completes_commands(tmp_path: Path) -> None:
    assert complete("turnstore s", tmp_path) == ["show", "stats"]


@needs_bash
def test_bash_never_offers_hidden_commands(tmp_path: Path) -> None:
    offered = complete("turnstore ", tmp_path)
    assert "list" in offered
    assert "demo-resume" not in offered and "complete-ids" not in offered


@needs_bash
def test_bash_completes_a_commands_options(tmp_path: Path) -> None:
    assert complete("turnstore delete --d", tmp_path) == ["--dry-run"]


@needs_bash
def test_bash_completes_global_options_before_the_command(tmp_path: Path) -> None:
    assert complete("turnstore --t", tmp_path) == ["--timeout"]


@needs_bash
def test_bash_completes_the_command_after_a_sqlite_url(tmp_path: Path) -> None:
    assert complete("turnstore --url sqlite:///x/s.db --timeout 3 sh", tmp_path) == ["show"]


@needs_bash
def test_bash_completes_session_ids_from_sqlite(ids_db: str, tmp_path: Path) -> None:
    offered = complete(f"turnstore --url {ids_db} show al", tmp_path)
    assert sorted(offered) == ["alpha-1", "alpha-2"]


@needs_bash
def test_bash_completes_session_ids_after_url_equals(ids_db: str, tmp_path: Path) -> None:
    assert complete(f"turnstore --url={ids_db} delete be", tmp_path) == ["beta"]


@needs_bash
def test_bash_completes_session_ids_with_the_url_after_the_command(
    ids_db: str, tmp_path: Path
) -> None:
    assert complete(f"turnstore export --url {ids_db} be", tmp_path) == ["beta"]


@needs_bash
def test_bash_answers_only_the_part_of_an_id_after_a_colon(ids_db: str, tmp_path: Path) -> None:
    # bash replaces the text after the last ':' of the word: "user:4" -> "user:42".
    assert complete(f"turnstore --url {ids_db} show user:4", tmp_path) == ["42"]


@needs_bash
def test_bash_completes_session_ids_from_redis(redis_url: str, tmp_path: Path) -> None:
    seed(redis_url, [("alpha-1", CONVERSATION, {}), ("beta", CONVERSATION, {})])
    assert complete(f"turnstore --url {redis_url} delete al", tmp_path) == ["alpha-1"]


@needs_bash
def test_bash_completes_layouts_after_an_equals_sign(tmp_path: Path) -> None:
    assert complete("turnstore migrate --from-layout=s", tmp_path) == ["sdk"]
    assert complete("turnstore migrate --from-layout o", tmp_path) == [
        "own",
        "openai-agents-redis",
    ]


@needs_bash
def test_bash_offers_no_id_where_a_value_is_expected(ids_db: str, tmp_path: Path) -> None:
    assert complete(f"turnstore --url {ids_db} show --last ", tmp_path) == []


# -- real shells on a terminal -------------------------------------------------------------


def type_and_tab(argv: list[str], setup: list[str], typed: str, expect: str, cwd: Path) -> str:
    """Start an interactive shell on a pseudo-terminal, run `setup`, type `typed` and Tab,
    wait for `expect` to be shown, then turn the line into `echo LINE: ...` and run it;
    returns the completed line as the shell then holds it."""
    import pty

    master, slave = pty.openpty()
    env = shell_env()
    env.update({"TERM": "dumb", "PS1": "$ ", "PROMPT": "$ ", "HISTFILE": os.devnull})
    env.pop("EDITOR", None)
    env.pop("VISUAL", None)
    process = subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
    )
    os.close(slave)
    seen = b""

    def read_until(marker: bytes, seconds: float) -> None:
        nonlocal seen
        deadline = time.monotonic() + seconds
        while marker not in seen:
            left = deadline - time.monotonic()
            assert left > 0, (
                f"{marker!r} not shown; the terminal had: {seen.decode(errors='replace')}"
            )
            ready, _, _ = select.select([master], [], [], min(left, 0.2))
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break

    try:
        for number, command in enumerate(setup):
            os.write(master, f"{command}; echo READY-{number}\n".encode())
            read_until(f"READY-{number}\r\n".encode(), 60)
        seen = b""
        os.write(master, typed.encode() + b"\t")
        read_until(expect.encode(), 60)
        os.write(master, b"\x01echo LINE: \n")  # Ctrl-A: to the start of the line
        read_until(b"\nLINE: ", 30)
        read_until(b"\r\n", 10)  # the rest of the echoed line
        tail = seen.split(b"\nLINE: ")[-1]
        return tail.split(b"\r\n")[0].decode().strip()
    finally:
        process.kill()
        process.wait()
        os.close(master)


@needs_bash
def test_interactive_bash_completes_an_id_after_a_sqlite_url(tmp_path: Path) -> None:
    url = sqlite_url_for(tmp_path / "ids.db")
    seed(url, [("alpha-1", CONVERSATION, {}), ("beta", CONVERSATION, {})])
    line = type_and_tab(
        ["bash", "--norc", "--noprofile", "-i"],
        ["source <(turnstore completion bash)"],
        f"turnstore --url {url} show al",
        "alpha-1",
        tmp_path,
    )
    assert line == f"turnstore --url {url} show alpha-1"


@needs_zsh
def test_zsh_completes_a_command(tmp_path: Path) -> None:
    line = type_and_tab(
        ["zsh", "-f", "-i"],
        ["autoload -U compinit && compinit -u -D", "source <(turnstore completion zsh)"],
        "turnstore --timeout 3 sta",
        "stats",
        tmp_path,
    )
    assert line == "turnstore --timeout 3 stats"


@needs_zsh
def test_zsh_completes_an_id_after_a_sqlite_url(tmp_path: Path) -> None:
    url = sqlite_url_for(tmp_path / "ids.db")
    seed(url, [("alpha-1", CONVERSATION, {}), ("beta", CONVERSATION, {})])
    line = type_and_tab(
        ["zsh", "-f", "-i"],
        ["autoload -U compinit && compinit -u -D", "source <(turnstore completion zsh)"],
        f"turnstore --url {url} show al",
        "alpha-1",
        tmp_path,
    )
    assert line == f"turnstore --url {url} show alpha-1"


@needs_zsh
def test_zsh_script_loads_without_a_prior_compinit(tmp_path: Path) -> None:
    script = run_cli("completion", "zsh", cwd=tmp_path).stdout
    result = subprocess.run(
        ["zsh", "-f", "-c", f"{script}\nprint -r -- ${{_comps[turnstore]}}"],
        cwd=tmp_path,
        env=shell_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "_turnstore" in result.stdout


def test_completion_json_holds_the_script(tmp_path: Path) -> None:
    result = run_cli("completion", "zsh", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert set(shown) == {"shell", "script"}
    assert shown["shell"] == "zsh"
    assert shown["script"] == run_cli("completion", "zsh", cwd=tmp_path).stdout
