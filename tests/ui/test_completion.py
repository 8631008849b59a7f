"""`remediate completion bash|zsh|powershell`, through the installed command.

bash: the script is loaded in a real bash and its completion function run the way bash's
programmable completion calls it (COMP_WORDS, COMP_CWORD, COMP_LINE, COMP_POINT set, then
the function): the installed ``remediate`` answers. zsh and PowerShell are not installed
here: their scripts are checked for the registration they make (PowerShell's is
argcomplete's text, which the tree-sitter grammar does not fully parse), and the tool's side
of PowerShell's protocol (the variables and the temporary file its script sets, see the
script text) is driven from Python.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXE = Path(sys.executable).with_name("remediate")
ENV = {**os.environ, "PATH": f"{EXE.parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def remediate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), *args], capture_output=True, text=True, env=env or ENV, timeout=60
    )


def bash_complete(line: str) -> list[str]:
    """What bash offers for ``line`` (cursor at its end) with the script loaded."""
    script = f"""
source <(remediate completion bash) || exit 3
complete -p remediate || exit 4
COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}
read -r -a COMP_WORDS <<< "$COMP_LINE"
[[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
_python_argcomplete remediate
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(
        ["bash", "--norc", "-c", script], capture_output=True, text=True, env=ENV, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    registered = "complete -o bashdefault -o default -o nospace -F _python_argcomplete remediate"
    assert lines[0] == registered
    return [word.strip() for word in lines[1:]]


def test_bash_script_loads_and_completes_sub_commands() -> None:
    assert bash_complete("remediate comp") == ["completion"]
    assert bash_complete("remediate completion p") == ["powershell"]
    offered = bash_complete("remediate ")
    assert {"playbooks", "plan", "diagnose", "apply", "undo", "bulk", "completion"} <= set(offered)
    assert bash_complete("remediate diagnose --j") == ["--json"]


@pytest.mark.e2e
def test_zsh_script_registers_remediate() -> None:
    done = remediate("completion", "zsh")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("#compdef remediate")
    assert "compdef _python_argcomplete remediate" in done.stdout


@pytest.mark.e2e
def test_powershell_script_registers_a_native_completer() -> None:
    done = remediate("completion", "powershell")
    assert done.returncode == 0, done.stderr
    assert "Register-ArgumentCompleter -Native -CommandName remediate" in done.stdout


@pytest.mark.e2e
def test_the_tool_answers_powershells_request(tmp_path: Path) -> None:
    answer = tmp_path / "completion.txt"
    line = "remediate completion "
    env = {
        **ENV,
        "ARGCOMPLETE_USE_TEMPFILES": "1",
        "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_SUPPRESS_SPACE": "0",
        "_ARGCOMPLETE_IFS": "\n",
        "_ARGCOMPLETE_SHELL": "powershell",
    }
    done = remediate(env=env)
    assert done.returncode == 0, done.stderr
    assert answer.read_text().split() == ["bash", "zsh", "powershell"]


@pytest.mark.e2e
def test_an_unknown_shell_is_one_error_line() -> None:
    done = remediate("completion", "fish")
    assert done.returncode == 2
    assert "invalid choice: 'fish'" in done.stderr and "Traceback" not in done.stderr


def test_help_and_version_do_not_import_argcomplete() -> None:
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write('LOADED=%s' % ('argcomplete' in sys.modules)))\n"
        "from remediate.ui.cli import main\n"
        "sys.argv = ['remediate', sys.argv[1]]\n"
        "main()\n"
    )
    for flag in ("--help", "--version"):
        done = subprocess.run(
            [sys.executable, "-c", probe, flag], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0
        assert done.stderr.endswith("LOADED=False"), done.stderr
