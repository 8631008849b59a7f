"""What `remediate apply`, `undo`, `show` and `plan` share around the API: the session (admin
password from the keyring, stdin or a prompt; the connector locked before it opens), the
plan shown and confirmed under the lock, the step progress, and the recap."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from remediate.core.env import Environment
from remediate.core.errors import NotInteractiveError, UsageError

if TYPE_CHECKING:
    from remediate.api import FixSettings, Handle
    from remediate.core.options import FixOptions
    from remediate.core.plan import Plan, Step
    from remediate.remote.connections import Connection
    from remediate.remote.session import StepResult
    from remediate.run.execute import CredentialSource
    from remediate.run.pipeline import Outcome


def add_confirm_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--what-if",
        action="store_true",
        help="send every change with -WhatIf: Exchange only reports, nothing changes",
    )
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


def open_handle(
    connection: Connection, env: Environment, *, password_stdin: bool, lock: Sequence[str]
) -> Handle:
    """The API's session, the connectors in ``lock`` locked first (a run refused by the
    lock sends nothing), warnings on stderr."""
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate import api
    from remediate.remote.login import admin_password

    password = admin_password(connection, env, password_stdin=password_stdin)
    return api.connect(connection, password=password, environ=env.environ, warn=env.err, lock=lock)


@dataclass
class Console:
    """The pipeline's two hooks for a person at a console: ``ready`` shows the script,
    resolves the relay passwords (a missing one fails before any change) and confirms;
    ``on_step`` prints one line per step as it ends."""

    env: Environment
    endpoint: str
    yes: bool
    password_stdin: bool
    plan: Plan | None = None

    def ready(self, plan: Plan, _current: object) -> CredentialSource:
        # lazy: a command module stays cheap to import (--help, completion); its work loads here
        from remediate.remote.secrets import relay_password
        from remediate.render.script import render_script
        from remediate.run.pipeline import resolved_credentials

        self.plan = plan
        self.env.write(render_script(plan))
        credential = resolved_credentials(
            plan, lambda ref: relay_password(ref, self.env, password_stdin=self.password_stdin)
        )
        confirm(self.env, plan, self.endpoint, yes=self.yes)
        self.env.out()
        return credential

    def on_step(self, step: Step, result: StepResult) -> None:
        steps = self.plan.steps if self.plan is not None else (step,)
        env = self.env
        env.out(
            f"[{steps.index(step) + 1}/{len(steps)}] {step.cmdlet}: "
            f"{'ok' if result.ok else 'FAILED'}"
        )
        lines = [*result.what_if, *(f"WARNING: {w}" for w in result.warnings)]
        if step.cmdlet == "Get-Queue" and result.ok:
            lines += queue_summaries(result.output)
        for line in lines:
            env.out(f"    {line}")
        for error in result.errors:
            env.out(f"    ERROR: {error.message}")


def confirm(env: Environment, plan: Plan, endpoint: str, *, yes: bool) -> None:
    """Ask before changing anything; without a terminal, --yes is required."""
    if yes:
        return
    question = (
        f"Apply {len(plan.changes)} change step(s) to '{plan.connector}' at {endpoint}? [y/N] "
    )
    if not env.interactive:
        raise NotInteractiveError(
            "not confirmed: no terminal to ask on; add --yes to apply without asking",
            hint="or --what-if to see what Exchange would do",
        )
    env.write_err(question)
    env.stderr.flush()
    answer = env.stdin.readline()
    if not answer.endswith("\n"):  # end of input: end the question's line
        env.err("")
    if answer.strip().lower() not in ("y", "yes"):
        raise UsageError("not applied: not confirmed")


def settings(options: FixOptions) -> FixSettings:
    """FixOptions as the API's keyword settings (the connector is given apart)."""
    return {
        "mechanism": options.mechanism,
        "username": options.username,
        "reenter_credential": options.reenter_credential,
        "smart_hosts": options.smart_hosts,
        "port": options.port,
        "require_tls": options.require_tls,
        "tls_auth_level": options.tls_auth_level,
        "tls_domain": options.tls_domain,
        "enable": options.enable,
        "protocol_logging": options.protocol_logging,
        "inputs": dict(options.extra),
    }


def report_run(env: Environment, outcome: Outcome) -> None:
    """Before/after, the step recap, and where the backup and audit went."""
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.run.report import before_after

    env.report()
    for line in before_after(outcome.before, outcome.after):
        env.report(line)
    env.report()
    for line in outcome.recap():
        env.report(line)


def queue_summaries(output: list[object]) -> list[str]:
    """One line per queue a Get-Queue step returned (status, messages, LastError)."""
    lines = []
    for item in output:
        if isinstance(item, dict):
            last_error = item.get("LastError") or "none"
            lines.append(
                f"{item.get('Identity')}: {item.get('Status')}, "
                f"{item.get('MessageCount')} message(s), LastError: {last_error}"
            )
    return lines
