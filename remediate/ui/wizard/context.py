"""What the wizard knows: the options it was started with and the context its stages share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remediate.core.env import Environment
from remediate.core.errors import UsageError
from remediate.ui.wizard.prompter import Prompter

if TYPE_CHECKING:
    from remediate.core.exchange import QueueInfo, SendConnector
    from remediate.core.plan import CredentialRef
    from remediate.core.playbooks import Playbook
    from remediate.diagnose.events import EventRecord
    from remediate.remote.connections import Connection
    from remediate.remote.session import Session
    from remediate.run.locks import ConnectorLocks
    from remediate.run.pipeline import Outcome


@dataclass(frozen=True)
class WizardOptions:
    """What the command line (or the demo) already knows."""

    playbook: str | None = None
    event_text: str | None = None
    connector: str | None = None
    connection: Connection | None = None
    admin_password: str | None = None  # the demo knows the lab's; never printed
    lab_relay: tuple[str, str] | None = None  # demo: (user, password) offered as an answer
    probe_ca_file: Path | None = None
    queue_wait: float = 20.0
    script_dir: Path = field(default_factory=Path.cwd)
    demo: bool = False  # the lab and its backups go when the run ends: no undo-later hint
    winrm_url: str | None = None  # the server's default WinRM endpoint (server_view)


@dataclass
class WizardContext:
    env: Environment
    prompter: Prompter
    options: WizardOptions
    playbook: Playbook | None = None
    event: EventRecord | None = None
    prefill: dict[str, Any] = field(default_factory=dict)
    hints: tuple[str, ...] = ()
    connection: Connection | None = None
    session: Session | None = None
    connector: SendConnector | None = None
    queues: list[QueueInfo] = field(default_factory=list)
    credentials: dict[CredentialRef, str] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    # what happened, for the summary and for Ctrl-C
    applied: Outcome | None = None
    applies: list[Outcome] = field(default_factory=list)  # every apply, the first first
    original: SendConnector | None = None  # the connector before the wizard changed it
    event_text: str | None = None
    script: Path | None = None
    undone: bool = False
    locks: ConnectorLocks | None = None  # held from the apply to the end of the wizard
    # the admin password of the session, for the server's WinRM endpoint (same login)
    password: str | None = field(default=None, repr=False)

    def say(self, text: str = "") -> None:
        self.env.out(text)

    def credential(self, ref: CredentialRef) -> str:
        if ref not in self.credentials:
            raise UsageError(f"no password was given for {ref.username}")
        return self.credentials[ref]
