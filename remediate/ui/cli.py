"""Argument parsing and dispatch only; each sub-command lives in remediate.ui.commands."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from remediate import __version__
from remediate.core import interrupts
from remediate.core.env import Environment
from remediate.core.errors import RemediateError
from remediate.ui.commands import COMMAND_MODULES

EXAMPLES = """\
examples:
  remediate demo
      start the embedded lab and fix its broken connector with the guided wizard
  remediate playbooks
  remediate plan 2016 --connector "Outbound to Relay" --mechanism BasicAuthRequireTLS \\
      --username relay@contoso.com --smart-host smtp.relay.example --port 587
  remediate plan 2002 --connector "Outbound to Relay" --port 587 --enable --output fix.ps1
"""


class _Parser(argparse.ArgumentParser):
    """Bad arguments give one error line and a hint, not argparse's usage block."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"remediate: error: {message}\nhint: see '{self.prog} --help'\n")
        sys.exit(2)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the sub-command it names gets its arguments.

    Why: some commands' arguments come from the planner (playbooks, YAML), which costs tens
    of milliseconds to import; ``remediate --help``, ``--version`` and the other commands
    need none of it. Without ``argv`` every sub-command is complete.
    """
    chosen = _chosen_command(argv) if argv is not None else None
    parser = _Parser(
        prog="remediate",
        description="Guided and scripted fixes for Exchange Send connector events 2016 and 2002.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"remediate {__version__}")
    _add_log_arguments(parser, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(f"remediate.ui.commands.{module_name}")
        cmd = sub.add_parser(
            module.NAME,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            epilog=getattr(module, "EPILOG", None),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if argv is None or module.NAME == chosen:
            module.add_arguments(cmd)
        _add_log_arguments(cmd, argparse.SUPPRESS)
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


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The first argument that is not an option (the top level has only flag options)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None, env: Environment | None = None) -> int:
    """The command; ``argv`` None means the real process (SIGTERM/SIGHUP then handled)."""
    if argv is None:
        interrupts.install()
    env = env or Environment()
    if argv is None and "_ARGCOMPLETE" in os.environ:
        _complete()
    parser = build_parser(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help(env.stdout)
        return 2
    return interrupts.exit_status(_run(args, env))


def _complete() -> None:
    """Answer the shell's completion request (argcomplete's variables set by the script of
    ``remediate completion``) from the full parser, then exit: argcomplete is imported here
    only, never on an ordinary run."""
    import argcomplete

    argcomplete.autocomplete(build_parser(), always_complete_options=False)


def _run(args: argparse.Namespace, env: Environment) -> int:
    try:
        if getattr(args, "verbose", False) or getattr(args, "debug", False):
            from remediate.core import logs

            logs.configure(
                env,
                verbose=bool(getattr(args, "verbose", False)),
                debug=bool(getattr(args, "debug", False)),
            )
        _check_piped_secrets(args, env)
        return int(args._module.run(args, env) or 0)
    except RemediateError as exc:
        env.err(f"remediate: error: {exc.message}")
        if exc.hint:
            env.err(f"hint: {exc.hint}")
        if getattr(args, "json", False) and not env.json_sent:  # one document, never two
            from remediate.ui import jsonout

            jsonout.emit(env, jsonout.error_json(exc.message, exc.hint, exc.exit_code))
        return exc.exit_code
    except KeyboardInterrupt:
        env.err(f"remediate: interrupted ({interrupts.reason()}); nothing further was sent.")
        return interrupts.CTRL_C_EXIT
    finally:
        env.write("")  # the last flush: a reader that went away ends output quietly


def _check_piped_secrets(args: argparse.Namespace, env: Environment) -> None:
    """With --password-stdin (or the wizard's --answers) every piped line is a secret: read
    and check them all now, so a bad one is refused before anything is sent."""
    wanted = getattr(args, "password_stdin", False) or getattr(args, "answers", None)
    if wanted and not env.stdin_isatty and getattr(args, "source", None) != "-":
        env.stdin_lines()


if __name__ == "__main__":
    sys.exit(main())
