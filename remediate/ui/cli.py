"""Argument parsing and dispatch only; each sub-command lives in remediate.ui.commands."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from remediate import __version__
from remediate.core.errors import RemediateError
from remediate.core.status import ExitStatus
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
    """The command; ``argv`` None means the real process (SIGTERM/SIGHUP then handled)."""
    if argv is None and "_ARGCOMPLETE" in os.environ:
        _complete()
    try:
        # the plan/apply options come from the playbooks, an admin's own among them
        parser = build_parser(sys.argv[1:] if argv is None else argv)
    except RemediateError as exc:
        env = env or _environment()
        env.err(f"remediate: error: {exc.message}")
        if exc.hint:
            env.err(f"hint: {exc.hint}")
        return exc.exit_code
    args = parser.parse_args(argv)  # --help and --version print and exit here
    # lazy: signal handling is for a run: --help and --version have ended above without it
    from remediate.core import interrupts

    if argv is None:
        interrupts.install()
    env = env or _environment()
    if not getattr(args, "_module", None):
        parser.print_help(env.stdout)
        return ExitStatus.USAGE
    return interrupts.exit_status(_run(args, env))


def _complete() -> None:
    """Answer the shell's completion request (argcomplete's variables set by the script of
    ``remediate completion``) from the full parser, then exit: argcomplete is imported here
    only, never on an ordinary run."""
    # lazy: argcomplete only when the shell asks for completions
    import argcomplete

    argcomplete.autocomplete(build_parser(), always_complete_options=False)


def _run(args: argparse.Namespace, env: Environment) -> int:
    # lazy: signal handling is for a run (main has imported it already)
    from remediate.core import interrupts

    try:
        if getattr(args, "verbose", False) or getattr(args, "debug", False):
            # lazy: only a run that logs or prints JSON needs it
            from remediate.core import logs

            logs.configure(
                env,
                verbose=bool(getattr(args, "verbose", False)),
                debug=bool(getattr(args, "debug", False)),
            )
        _check_piped_secrets(args, env)
        return int(args._module.run(args, env) or 0)
    except RemediateError as exc:
        hint = "\n".join(filter(None, [exc.hint, *_recap_lines(exc)]))
        env.err(f"remediate: error: {exc.message}")
        if hint:
            env.err(f"hint: {hint}")
        if getattr(args, "json", False) and not env.json_sent:  # one document, never two
            # lazy: only a run that logs or prints JSON needs it
            from remediate.ui import jsonout

            jsonout.emit(env, jsonout.error_json(exc.message, hint or None, exc.exit_code))
        return exc.exit_code
    except KeyboardInterrupt:
        env.err(f"remediate: interrupted ({interrupts.reason()}); nothing further was sent.")
        return ExitStatus.INTERRUPTED
    finally:
        env.write("")  # the last flush: a reader that went away ends output quietly


def _recap_lines(exc: RemediateError) -> list[str]:
    """For a run cut short: what it had applied (unless the message already says it) and
    where its backup is, with the undo command."""
    if exc.recap is None:
        return []
    # lazy: only a run that logs or prints JSON needs it
    from remediate.run.pipeline import backup_lines  # only after a run: --help stays light

    summary = [exc.recap.summary] if exc.recap.summary != exc.message else []
    return [*summary, *backup_lines(exc.recap.backup)]


def _check_piped_secrets(args: argparse.Namespace, env: Environment) -> None:
    """With --password-stdin (or the wizard's --answers) every piped line is a secret: read
    and check them all now, so a bad one is refused before anything is sent."""
    wanted = getattr(args, "password_stdin", False) or getattr(args, "answers", None)
    if wanted and not env.stdin_isatty and getattr(args, "source", None) != "-":
        env.stdin_lines()


if __name__ == "__main__":
    sys.exit(main())


def _environment() -> Environment:
    # lazy: --help and --version end before any output needs the Environment
    from remediate.core.env import Environment

    return Environment()
