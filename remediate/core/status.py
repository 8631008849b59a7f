"""The process exit statuses, one enum for every command (the README's table is tested
against it). ``errors`` and the commands take their codes from here; nothing else picks a
number."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    SUCCESS = 0
    ERROR = 1
    USAGE = 2
    BROKEN_PLAYBOOK = 3
    NO_PASSWORD = 4
    CONNECTION_FAILED = 5
    FAILED = 6
    NOT_KNOWN = 7
    PENDING = 10
    INTERRUPTED = 130

    @property
    def meaning(self) -> str:
        return MEANINGS[self]


MEANINGS = {
    ExitStatus.SUCCESS: "done, nothing to change, a what-if run, or mail flows",
    ExitStatus.ERROR: "the wizard was cancelled; diagnose found no event",
    ExitStatus.USAGE: "bad input, refused by the pre-flight checks, not confirmed, or the "
    "connector's lock is held by another run",
    ExitStatus.BROKEN_PLAYBOOK: "a playbook or template is broken",
    ExitStatus.NO_PASSWORD: "no password (keyring missing or locked, or the password is not "
    "stored)",
    ExitStatus.CONNECTION_FAILED: "the endpoint could not be reached or refused the session",
    ExitStatus.FAILED: "Exchange refused a step, a connector is unknown, or mail still fails",
    ExitStatus.NOT_KNOWN: "the change is in place, but whether mail flows is not known",
    ExitStatus.PENDING: "bulk plan: changes are pending",
    ExitStatus.INTERRUPTED: "Ctrl-C (128 + the signal number after SIGTERM or SIGHUP: 143, 129)",
}
