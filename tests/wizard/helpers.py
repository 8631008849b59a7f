"""Fixtures for in-process wizard tests: a real Lab per test, prompt_toolkit pipe input
standing in for the keyboard (the only stand-in: questionary itself runs for real)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from remediate.core.env import Environment
from remediate.core.exchange import SendConnector
from remediate.lab.seed import RELAY
from remediate.lab.server import Lab
from remediate.ui.wizard.flow import WizardOptions, run_wizard
from remediate.ui.wizard.prompter import QuestionaryPrompter

ENTER = "\r"
DOWN = "\x1b[B"
UP = "\x1b[A"
CTRL_C = "\x03"
CLEAR_LINE = "\x15"  # Ctrl-U: delete a prefilled default


@dataclass
class Run:
    status: int
    out: str
    err: str


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with Lab(
        state_file=tmp_path / "lab-state.json", workdir=tmp_path / "lab", auth="basic"
    ) as started:
        yield started


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """keyring's own 'no backend' backend: the wizard must ask and not offer to save."""
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


def lab_options(lab: Lab, **changes: object) -> WizardOptions:
    from remediate.ui.commands.demo import lab_connection

    values: dict[str, object] = {
        "playbook": "2016",
        "connector": RELAY,
        "connection": lab_connection(lab),
        "admin_password": lab.admin_password,
        "probe_ca_file": lab.ca_file,
        "queue_wait": 10.0,
    }
    values.update(changes)
    return WizardOptions(**values)  # type: ignore[arg-type]


def driver(environ: dict[str, str]) -> Callable[..., Run]:
    """Run the wizard in-process with ``keys`` queued as typed input (stdout pretends to be
    a terminal, so NO_COLOR keeps the checklist plain; colour is tested in a real terminal)."""
    environ = {**environ, "NO_COLOR": "1"}

    def run(options: WizardOptions, keys: str) -> Run:
        out, err = io.StringIO(), io.StringIO()
        env = Environment(
            stdin=io.StringIO(),
            stdout=out,
            stderr=err,
            stdin_isatty=True,
            stdout_isatty=True,
            environ=environ,
        )
        with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
            pipe.send_text(keys)
            pipe.close()  # keys that run out end in EOFError, never a hang
            status = run_wizard(env, QuestionaryPrompter(), options)
        return Run(status, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def drive(tmp_path: Path, no_keyring: None) -> Callable[..., Run]:
    """The wizard without a keyring."""
    return driver({"XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path)})


@pytest.fixture
def drive_keyring(keyring_env: dict[str, str]) -> Callable[..., Run]:
    """The wizard with a real Secret Service (tests/secret_service.py) as its keyring."""
    return driver(dict(keyring_env))


def set_connector(lab: Lab, **parameters: object) -> None:
    """Break the lab's relay connector through its real PSRP endpoint, as an admin would
    (with the relay credential, which the lab requires for BasicAuthRequireTLS)."""
    from pypsrp.complex_objects import PSCredential
    from pypsrp.powershell import PowerShell, RunspacePool
    from pypsrp.wsman import WSMan

    wsman = WSMan(
        lab.host,
        port=lab.port,
        path="PowerShell",
        ssl=False,
        auth="basic",
        username=lab.admin_user,
        password=lab.admin_password,
        encryption="never",
    )
    with RunspacePool(wsman, configuration_name="Microsoft.Exchange") as pool:
        pool.exchange_keys()
        credential = PSCredential(username=lab.relay_user, password=lab.relay_password)
        ps = PowerShell(pool)
        ps.add_cmdlet("Set-SendConnector").add_parameter("Identity", RELAY)
        ps.add_parameter("AuthenticationCredential", credential)
        for name, value in parameters.items():
            ps.add_parameter(name, value)
        ps.add_parameter("Confirm", False)
        ps.invoke()
        assert not ps.had_errors and not ps.streams.error, [str(e) for e in ps.streams.error]


def relay_connector(lab: Lab) -> SendConnector:
    """The relay connector as Exchange (the lab) reports it now."""
    from remediate.remote.session import Session
    from remediate.ui.commands.demo import lab_connection

    with Session(lab_connection(lab), lab.admin_password) as session:
        return session.get_connectors(RELAY)[0]
