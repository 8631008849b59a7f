"""The one error hierarchy users see.

Every error a user can meet is a ``RemediateError``: its ``str()`` is the one line printed on
stderr, ``hint`` an optional second line, and ``exit_code`` the process status. Messages are
written for Exchange administrators and must never contain a secret.
"""

from __future__ import annotations

from remediate.core.status import ExitStatus

TYPE_CHECKING = False  # typing costs every start-up, --help too, a few ms (mypy knows the name)

if TYPE_CHECKING:
    from pathlib import Path


class RunRecap:
    """What a run cut short had done: the step-by-step summary, and the backup taken
    before its first change (None when none was).

    A plain class, not a dataclass: every command, ``--help`` too, imports this module, and
    ``dataclasses`` (with the ``inspect`` it imports) would double ``--help``'s start-up."""

    __slots__ = ("backup", "summary")

    def __init__(self, summary: str, backup: Path | None = None) -> None:
        self.summary = summary
        self.backup = backup


class RemediateError(Exception):
    """Base class: a problem the user can act on."""

    exit_code: int = ExitStatus.ERROR

    def __init__(
        self, message: str, *, hint: str | None = None, recap: RunRecap | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.recap = recap  # set by the apply pipeline when a run was cut short

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled with its attributes, whatever its ``__init__`` takes (a shell's error
        crosses from a worker process, ``remote.hosting``)."""
        return (_rebuilt, (type(self), self.message), self.__dict__)


def _rebuilt(cls: type[RemediateError], message: str) -> RemediateError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    return error


class UsageError(RemediateError):
    """Bad input on the command line or in an input file; nothing was sent anywhere."""

    exit_code = ExitStatus.USAGE


class OptionError(UsageError):
    """A fix option's value breaks its rule. ``flag`` names the option as the command line
    does and ``problem`` says what is wrong, so bulk (by row key), answers files and the
    wizard can name it their own way instead of parsing the message."""

    def __init__(self, flag: str, problem: str, *, hint: str | None = None):
        super().__init__(f"{flag}: {problem}", hint=hint)
        self.flag = flag
        self.problem = problem


class PreflightError(UsageError):
    """A change Exchange would refuse or silently mangle; refused before anything is sent."""

    def __init__(self, rule: str, parameter: str, message: str, *, hint: str | None = None):
        super().__init__(f"{parameter}: {message}", hint=hint)
        self.rule = rule
        self.parameter = parameter


class PlaybookError(RemediateError):
    """A playbook file is broken (named by file and field)."""

    exit_code = ExitStatus.BROKEN_PLAYBOOK


class TemplateError(RemediateError):
    """A PowerShell template is missing or does not render."""

    exit_code = ExitStatus.BROKEN_PLAYBOOK


class UnsafeValueError(UsageError):
    """A value cannot be written as a PowerShell literal (control characters)."""


class NotInteractiveError(UsageError):
    """An interactive-only command was started without a terminal."""


class SecretStoreError(RemediateError):
    """The OS keyring is missing, locked, or refuses the operation."""

    exit_code = ExitStatus.NO_PASSWORD


class ConnectionFailed(RemediateError):
    """The Exchange endpoint could not be reached or refused the session."""

    exit_code = ExitStatus.CONNECTION_FAILED


class LoginRefused(ConnectionFailed):
    """The endpoint (or the KDC) refused the user name or password: the wizard asks again."""


class RemoteCommandError(RemediateError):
    """Exchange answered a step with an error record."""

    exit_code = ExitStatus.FAILED


class Interrupted(RemediateError):
    """The operator pressed Ctrl-C; the message says what was and was not applied."""

    exit_code = ExitStatus.INTERRUPTED
