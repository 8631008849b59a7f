"""The relay password saved to a real Secret Service when offered; Ctrl-C in the middle of
the apply stops between steps and says what was applied."""

from __future__ import annotations

import _thread
import gc
import re
import threading
import warnings
from pathlib import Path

from remediate.core.exchange import CredentialState
from remediate.core.plan import RELAY_SERVICE
from remediate.lab.seed import RELAY
from remediate.lab.server import Lab
from remediate.remote.secrets import get_secret
from tests.wizard.helpers import CLEAR_LINE, ENTER, lab_options, relay_connector


def test_typed_password_is_offered_to_the_keyring_and_saved(lab: Lab, drive_keyring) -> None:
    secret = lab.relay_password
    keys = (
        ENTER
        + ENTER  # connector, mechanism
        + f"{CLEAR_LINE}{lab.relay_user}{ENTER}"
        + ENTER  # password source: type (nothing saved yet)
        + f"{secret}{ENTER}{secret}{ENTER}"
        + "y"  # save it in the keyring
        + ENTER  # apply
    )
    run = drive_keyring(lab_options(lab), keys)
    assert run.status == 0, run.err
    assert f"Saved in the keyring ({RELAY_SERVICE} / {lab.relay_user})." in run.out
    assert get_secret(RELAY_SERVICE, lab.relay_user) == secret
    assert secret not in run.out + run.err


def test_ctrl_c_during_the_apply_reports_what_was_applied(lab: Lab, drive) -> None:
    """Ctrl-C is delivered (as SIGINT would) the moment the lab has stored the credential."""
    stop = threading.Event()

    def interrupt_when_changed() -> None:
        while not stop.is_set():
            if lab.organization.connector(RELAY).credential is not None:
                _thread.interrupt_main()
                return
            stop.wait(0.005)

    watcher = threading.Thread(target=interrupt_when_changed, daemon=True)
    watcher.start()
    secret = lab.relay_password
    keys = (
        ENTER + ENTER + f"{CLEAR_LINE}{lab.relay_user}{ENTER}{ENTER}{secret}{ENTER}{secret}{ENTER}"
    )
    try:
        run = drive(lab_options(lab), keys + ENTER)
    finally:
        stop.set()
        watcher.join()
        _collect_the_interrupted_response()
    assert run.status == 130
    assert "Nothing else was sent to Exchange." in run.err
    assert "Interrupted during the apply." in run.err
    assert "Retry-Queue -Server -Filter: not run" in run.err  # stopped between steps
    assert relay_connector(lab).credential is CredentialState.SET
    # the interruption declares the backup it cut short (ExecutionInterrupted.recap)
    [backup] = re.findall(r"The backup taken before the apply: (\S+)", run.err)
    assert Path(backup).is_file() and f"To undo: remediate undo {backup}" in run.err


def _collect_the_interrupted_response() -> None:
    """``interrupt_main`` raises KeyboardInterrupt in this process wherever the wizard is,
    possibly while requests reads a reply: the response keeps its socket, and only the
    garbage collector frees it (a real Ctrl-C ends the process, and every socket with it).
    Collected here, without its ResourceWarning, so it is not blamed on a later test (as it
    was once in CI, on the next module's first test)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()

