"""The run of a parsed command: signal handling, logging, the piped secrets, the command
module, and the one place a ``RemediateError`` becomes its message, hint and exit status.
``remediate.ui.cli`` parses and imports this only for a run (``--help`` stays light)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import IO

from remediate.core import interrupts
from remediate.core.env import Environment
from remediate.core.errors import RemediateError
from remediate.core.status import ExitStatus


def run(
    args: argparse.Namespace,
    env: Environment | None,
    print_help: Callable[[IO[str]], None],
    *,
    real_process: bool,
) -> int:
    """Run the command ``args`` names (the help and status 2 when none is named)."""
    if real_process:
        interrupts.install()
    env = env or Environment()
    if not getattr(args, "_module", None):
        print_help(env.stdout)
        return ExitStatus.USAGE
    return interrupts.exit_status(_run(args, env))


def not_started(exc: Exception, env: Environment | None) -> int:
    """The parser could not be built (a playbook of the admin's is broken): its one error
    line and hint, and its exit status. Anything else is a bug and goes on."""
    if not isinstance(exc, RemediateError):
        raise exc
    env = env or Environment()
    env.err(f"remediate: error: {exc.message}")
    if exc.hint:
        env.err(f"hint: {exc.hint}")
    return exc.exit_code


def _run(args: argparse.Namespace, env: Environment) -> int:
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
