"""Argument parsing and dispatch only; each sub-command lives in remediate.ui.commands."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from remediate import __version__
from remediate.ui.commands import COMMANDS

TYPE_CHECKING = False  # typing itself costs --help a few milliseconds (mypy knows the name)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

    from remediate.core.env import Environment

EXAMPLES = """\
examples:
  remediate demo
      start the embedded lab and fix its broken connector with the guided wizard
  remediate playbooks
  remediate plan 2016 --connector "Outbound to Relay" --mechanism BasicAuthRequireTLS \\
      --username relay@contoso.com --smart-host smtp.relay.example --port 587
  remediate plan 2002 --connector "Outbound to Relay" --port 587 --enable --output fix.ps1
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter with the width shutil.get_terminal_size would give, without
    importing shutil (and the compression modules it imports) on every --help."""

    def __init__(self, prog: str, **kwargs: int | None) -> None:
        if kwargs.get("width") is None:
            kwargs["width"] = _columns() - 2
        super().__init__(prog, **kwargs)  # type: ignore[arg-type]


def _columns() -> int:
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    stdout = sys.__stdout__
    try:
        return os.get_terminal_size(stdout.fileno()).columns or 80 if stdout else 80
    except (ValueError, OSError):
        return 80


class _Parser(argparse.ArgumentParser):
    """Bad arguments give one error line and a hint, not argparse's usage block."""

    def error(self, message: str) -> NoReturn:
        # lazy: only a bad command line needs the exit statuses
        from remediate.core.status import ExitStatus

        sys.stderr.write(f"remediate: error: {message}\nhint: see '{self.prog} --help'\n")
        sys.exit(ExitStatus.USAGE)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the sub-command it names is imported and gets its
    arguments.

    Why: some commands' arguments come from the planner (playbooks, YAML), which costs tens
    of milliseconds to import; ``remediate --help``, ``--version`` and the other commands
    need none of it (benchmarks/startup.py). Without ``argv`` every sub-command is complete.
    """
    chosen = _chosen_command(argv) if argv is not None else None
    parser = _Parser(
        prog="remediate",
        description="Guided and scripted fixes for Exchange Send connector events 2016 and 2002.",
        epilog=EXAMPLES,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"remediate {__version__}")
    _add_log_arguments(parser, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_line in COMMANDS.items():
        complete = argv is None or name == chosen
        # a command not named is only a line of the help: no arguments, not even -h
        cmd = sub.add_parser(name, help=help_line, formatter_class=_Formatter, add_help=complete)
        if complete:
            module = importlib.import_module(f"remediate.ui.commands.{name}")
            cmd.description = getattr(module, "DESCRIPTION", help_line)
            cmd.epilog = getattr(module, "EPILOG", None)
            module.add_arguments(cmd)
            for each in _with_actions(cmd):  # `bulk apply FILE --verbose` too
                _add_log_arguments(each, argparse.SUPPRESS)
            cmd.set_defaults(_module=module)
    return parser


def _add_log_arguments(parser: argparse.ArgumentParser, default: object) -> None:
    """Before or after the command name (the later one does not reset the earlier)."""
    parser.add_argument(
        "--verbose", action="store_true", default=default, help="log what is done to stderr"
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="log everything (pypsrp's WinRM messages too) to stderr, secrets redacted",
    )


def _with_actions(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``parser`` and the parsers of its actions (``bulk plan|apply|undo``)."""
    nested = [
        action.choices.values()
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    return [parser, *(each for choices in nested for each in choices)]


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The first argument that is not an option (the top level has only flag options)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None, env: Environment | None = None) -> int:
    """The command; ``argv`` None means the real process (SIGTERM/SIGHUP then handled).
    Parsing lives here, the run in ``remediate.ui.program``: ``--help`` and ``--version``
    end in ``parse_args`` without importing the run, the error hierarchy or signal handling."""
    if argv is None and "_ARGCOMPLETE" in os.environ:
        _complete()
    try:
        # the plan/apply options come from the playbooks, an admin's own among them
        parser = build_parser(sys.argv[1:] if argv is None else argv)
    except Exception as exc:
        # lazy: the run and the error hierarchy; --help and --version never come here
        from remediate.ui import program

        return program.not_started(exc, env)  # a broken playbook; anything else re-raised
    args = parser.parse_args(argv)  # --help and --version print and exit here
    # lazy: the run and the error hierarchy; --help and --version have ended above
    from remediate.ui import program

    return program.run(args, env, parser.print_help, real_process=argv is None)


def _complete() -> None:
    """Answer the shell's completion request (argcomplete's variables set by the script of
    ``remediate completion``) from the full parser, then exit: argcomplete is imported here
    only, never on an ordinary run."""
    # lazy: argcomplete only when the shell asks for completions
    import argcomplete

    argcomplete.autocomplete(build_parser(), always_complete_options=False)


if __name__ == "__main__":
    sys.exit(main())
