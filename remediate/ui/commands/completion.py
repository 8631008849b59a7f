"""`remediate completion SHELL`: print the tab-completion script for bash, zsh or PowerShell.

The scripts are argcomplete's: the shell calls ``remediate`` back with argcomplete's
variables set, and ``remediate.ui.cli.main`` answers from the full parser (argcomplete is
imported only then, so plain runs and ``--help`` never load it).
"""

from __future__ import annotations

import argparse

from remediate.core.env import Environment
from remediate.core.status import ExitStatus

NAME = "completion"
SHELLS = ("bash", "zsh", "powershell")
EPILOG = """\
install (one command per shell, then open a new shell):
  bash:  echo 'eval "$(remediate completion bash)"' >> ~/.bashrc
  zsh:   echo 'eval "$(remediate completion zsh)"' >> ~/.zshrc
  PowerShell (Windows PowerShell 5.1 or PowerShell 7):
    Add-Content $PROFILE 'remediate completion powershell | Out-String | Invoke-Expression'
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")


def run(args: argparse.Namespace, env: Environment) -> int:
    # lazy: argcomplete only when the shell asks for completions
    import argcomplete

    env.write(argcomplete.shellcode(["remediate"], shell=args.shell))
    return ExitStatus.SUCCESS
