"""The shell itself: one pypsrp RunspacePool on one endpoint, and the steps sent to it.

``LocalShell`` is everything of a session that speaks pypsrp: open and close the pool,
send a step with ``add_cmdlet``/``add_parameter`` only (Exchange's endpoint is no-language
and the tool never builds script text), collect what it produced. ``Session`` puts the reads
on top; ``hosting.HostedShell`` runs a LocalShell in a worker process with the same methods.
A credential becomes a PSCredential only at the moment its step is sent, after
``exchange_keys()`` so the password travels as an encrypted SecureString. pypsrp is imported
when a shell opens, not when this module is.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol, cast

from remediate import __version__
from remediate.core.errors import RemediateError, UsageError
from remediate.core.plan import CredentialRef, Parameter, ParamValue, Step, Switch
from remediate.remote.connections import warn_basic_over_http
from remediate.remote.errors import RemoteError, map_exception, remote_error_from_record
from remediate.remote.kerberos import principal_name, require_gssapi, uses_gssapi
from remediate.remote.wire import plain

if TYPE_CHECKING:
    from remediate.remote.connections import Connection

Credential = Callable[[CredentialRef], str]

WHAT_IF_PREFIX = "What if:"
# MaxConcurrentCommandsPerShell: a shell takes this many commands in its life, then fails
# every further one (exchange-notes.md "Throttling"; pypsrp issue 148). Sessions open a new
# shell before they reach it.
COMMANDS_PER_SHELL = 1000
_QUOTA_REASON = "maximum number of concurrent commands per shell"


class ShellQuotaReached(Exception):
    """``begin`` would exceed the shell's command quota: finish what is in flight, then
    ``recycle()``. Nothing was sent for the step."""


@dataclass
class Pending:
    """A step sent with ``begin``, its pipeline running on the server (``ps``: the pypsrp
    PowerShell, or a worker's handle for it)."""

    step: Step
    ps: Any


@dataclass
class StepResult:
    """What one step produced. ``output`` holds plain values: a deserialized object becomes a
    dict of its properties."""

    step: Step
    ok: bool
    output: list[Any]
    errors: list[RemoteError]
    warnings: list[str]
    what_if: list[str]
    information: list[str] = field(default_factory=list)  # other host/information lines

    @property
    def changed(self) -> bool:
        """A change step that ran without errors and without -WhatIf."""
        return self.step.is_change and self.ok and not self.step.has_param("WhatIf")


class Shell(Protocol):
    """What a Session needs of its shell: ``LocalShell`` here, ``HostedShell`` in a worker
    process."""

    connection: Connection

    @property
    def is_open(self) -> bool: ...

    def open(self) -> None: ...

    def close(self) -> None: ...

    def begin(self, step: Step, credential: Credential | None = None) -> Pending: ...

    def finish(self, pending: Pending) -> StepResult: ...


class LocalShell:
    """One RunspacePool on one endpoint, in this process, reused for every step until
    ``close()``."""

    def __init__(
        self,
        connection: Connection,
        password: str | None,
        warn: Callable[[str], None],
        *,
        runspaces: int = 1,
        commands_per_shell: int = COMMANDS_PER_SHELL,
    ) -> None:
        self.connection = connection
        self._password = password
        self._warn = warn
        self._pool: Any = None
        self._host: Any = None
        self._keys_exchanged = False
        self.runspaces = max(1, runspaces)  # pipelines the pool runs at once
        self.commands_per_shell = max(1, commands_per_shell)
        self.commands_sent = 0  # in the current shell

    def __repr__(self) -> str:
        return f"LocalShell({self.connection.label!r}, open={self._pool is not None})"

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    def open(self) -> None:
        # lazy: pypsrp and requests take about 100 ms to import; only a connection needs them
        from pypsrp.powershell import RunspacePool

        if self._pool is not None:
            return
        require_gssapi(self.connection)
        warn_basic_over_http(self.connection, self._warn)
        self._host = _collecting_host()
        pool = None
        try:
            pool = RunspacePool(
                self._wsman(),
                configuration_name=self.connection.configuration_name,
                host=self._host,
                max_runspaces=self.runspaces,
            )
            pool.open()
        except Exception as exc:
            if pool is not None:
                with contextlib.suppress(Exception):  # a half-created shell, if any
                    pool.close()
                pool.connection.close()  # the HTTP connections it kept open
            raise map_exception(exc, self.connection) from None
        _settle_environment(pool)
        self._pool = pool
        self.commands_sent = 0

    def close(self) -> None:
        pool, self._pool = self._pool, None
        self._keys_exchanged = False
        if pool is None:
            return
        with contextlib.suppress(Exception):  # a shell left behind times out on the server
            pool.close()
        pool.connection.close()  # the HTTP connections (requests' pool), not left to the GC

    # --- steps -----------------------------------------------------------------------------

    @property
    def commands_left(self) -> int:
        """Commands the current shell still takes before its quota."""
        return self.commands_per_shell - self.commands_sent

    def begin(self, step: Step, credential: Credential | None = None) -> Pending:
        """Send one step without waiting (the pool runs up to ``runspaces`` at once).
        ShellQuotaReached when the shell takes no more commands: nothing was sent."""
        # lazy: pypsrp and requests take about 100 ms to import; only a connection needs them
        from pypsrp.exceptions import WSManFaultError
        from pypsrp.powershell import PowerShell

        pool = self._require_pool()
        if self.commands_left <= 0:
            raise ShellQuotaReached
        try:
            ps = PowerShell(pool)
            ps.add_cmdlet(step.cmdlet)
            for parameter in step.parameters:
                ps.add_parameter(parameter.name, self._wire_value(parameter, credential))
            self.commands_sent += 1
            ps.begin_invoke()
        except RemediateError:  # no password for a credential, a locked keyring
            raise
        except WSManFaultError as exc:
            if _QUOTA_REASON in str(exc.reason).lower():  # a server quota lower than ours
                self.commands_per_shell = self.commands_sent = max(1, self.commands_sent - 1)
                pool.pipelines.pop(ps.id, None)
                raise ShellQuotaReached from None
            raise map_exception(exc, self.connection) from None
        except Exception as exc:
            raise map_exception(exc, self.connection) from None
        return Pending(step, ps)

    def finish(self, pending: Pending) -> StepResult:
        """Wait for a step sent with ``begin`` and read what it produced."""
        ps = pending.ps
        try:
            raw_output = ps.end_invoke()
        except Exception as exc:
            raise map_exception(exc, self.connection) from None
        # pypsrp keeps every pipeline (its output too) in the pool until close(), which
        # costs a Signal round trip; the command is done, so only the reference goes
        self._pool.pipelines.pop(ps.id, None)
        host_lines = [line.rstrip("\r\n") for line in self._host.lines_of(ps.id)]
        host_lines += [str(i.message_data) for i in ps.streams.information]
        errors = [remote_error_from_record(r) for r in ps.streams.error]
        return StepResult(
            step=pending.step,
            ok=not ps.had_errors and not errors,
            output=[plain(o) for o in raw_output],
            errors=errors,
            warnings=[_warning_text(w) for w in ps.streams.warning],
            what_if=[line for line in host_lines if line.startswith(WHAT_IF_PREFIX)],
            information=[line for line in host_lines if not line.startswith(WHAT_IF_PREFIX)],
        )

    def _wire_value(self, parameter: Parameter, credential: Credential | None) -> Any:
        value = parameter.value
        if isinstance(value, CredentialRef):
            return self._ps_credential(value, credential)
        return wire_value(value)

    def _ps_credential(self, ref: CredentialRef, credential: Credential | None) -> Any:
        # lazy: pypsrp and requests take about 100 ms to import; only a connection needs them
        from pypsrp.complex_objects import PSCredential

        if credential is None:
            raise missing_password(ref)
        if not self._keys_exchanged:
            self._pool.exchange_keys()
            self._keys_exchanged = True
        return PSCredential(username=ref.username, password=credential(ref))

    def _require_pool(self) -> Any:
        if self._pool is None:
            self.open()
        return self._pool

    def _wsman(self) -> Any:
        # lazy: pypsrp and requests take about 100 ms to import; only a connection needs them
        from pypsrp.wsman import WSMan

        conn = self.connection
        https = conn.scheme == "https"
        auth = str(conn.auth.value if isinstance(conn.auth, Enum) else conn.auth)
        extra: dict[str, Any] = {}  # the auth-specific keywords of pypsrp's **kwargs
        if auth == "certificate":
            if not (https and conn.certificate_file and conn.certificate_key_file):
                raise UsageError(
                    "--auth certificate needs https, --certificate and --certificate-key",
                    hint="the client certificate is mapped to the admin account in IIS",
                )
            extra = {
                "certificate_pem": str(conn.certificate_file),
                "certificate_key_pem": str(conn.certificate_key_file),
            }
        if auth in ("basic", "ntlm", "credssp") and not conn.username:
            raise UsageError(
                f"--auth {auth} needs --user (the admin account)",
                hint="only kerberos and negotiate can log in without a user (a kinit ticket)",
            )
        username = conn.username
        if username and uses_gssapi(auth):
            username = principal_name(username)  # DOMAIN\user and UPNs as MIT Kerberos needs
        if conn.spn_host and auth in ("kerberos", "negotiate", "ntlm"):
            extra["negotiate_hostname_override"] = conn.spn_host
        cert_validation: bool | str = str(conn.ca_file) if conn.ca_file else conn.verify
        # pypsrp 0.9.1 annotates cert_validation as bool and the timeouts as int, but hands
        # cert_validation to requests' verify (True, False or a CA bundle path), the connect
        # and read timeouts to requests (seconds, fractions allowed) and writes
        # OperationTimeout as PT<value>S (xs:duration, fractions allowed). Rounding would
        # change the timeouts an admin gave (0.2 s in tests/remote/test_remote_errors.py).
        return WSMan(
            f"[{conn.server}]" if ":" in conn.server else conn.server,
            port=conn.port,
            path=conn.path.lstrip("/"),
            ssl=https,
            auth=auth,
            username=username,
            password=self._password or None,
            cert_validation=cast(bool, cert_validation) if https else False,
            encryption="never" if auth == "basic" and not https else "auto",
            connection_timeout=cast(int, conn.connect_timeout),
            operation_timeout=cast(int, _seconds(conn.operation_timeout)),
            read_timeout=cast(int, conn.operation_timeout + 2),
            reconnection_retries=0,
            reconnection_backoff=0.5,
            **extra,
        )


# --- values across the wire ------------------------------------------------------------------


# what a shell imports when it opens and sends its first step (pypsrp imports requests)
_SHELL_MODULES = (
    "pypsrp.complex_objects",
    "pypsrp.exceptions",
    "pypsrp.host",
    "pypsrp.powershell",
    "pypsrp.wsman",
)


def preload() -> None:
    """Import what a shell needs (pypsrp, requests) now: a worker forked afterwards has it
    without importing it again (``hosting.start_hosts``)."""
    for module in _SHELL_MODULES:
        importlib.import_module(module)


def missing_password(ref: CredentialRef) -> UsageError:
    return UsageError(f"a password for {ref.username} is needed but none was supplied")


def wire_value(value: ParamValue) -> Any:
    """A parameter value as pypsrp sends it (lists, plain str; a switch as $true)."""
    if isinstance(value, Switch):
        return True
    if isinstance(value, dict):  # a hashtable (Get-WinEvent -FilterHashtable, server_view)
        return {str(k): wire_value(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [wire_value(v) for v in value]
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def _seconds(value: float) -> int | float:
    """Whole seconds as an int, so WSMan's OperationTimeout reads PT60S as WinRM writes it."""
    return int(value) if float(value).is_integer() else value


def _warning_text(record: Any) -> str:
    try:
        text = str(record)
    except TypeError:  # no ToString: psrpcore sends warnings without it
        text = ""
    return text if text and text != "None" else str(getattr(record, "message", "") or "")


def _settle_environment(pool: Any) -> None:
    """pypsrp read the environment's proxy and CA bundle settings into its requests session
    when it built it (on the shell's first request); without this, requests scans every
    environment variable again for the proxy settings on each request (about a tenth of the
    client's CPU per pipeline, benchmarks/bulk.py). The settings already read stay."""
    http = getattr(pool.connection.transport, "session", None)
    if http is not None:
        http.trust_env = False


def _collecting_host() -> Any:
    """A PSHost whose UI keeps the lines the server writes (Exchange's "What if:" text), per
    pipeline: several may be in flight at once."""
    # lazy: pypsrp and requests take about 100 ms to import; only a connection needs them
    from pypsrp.host import PSHost, PSHostUserInterface

    class CollectingHost(PSHost):
        def __init__(self) -> None:
            self.collecting_ui = PSHostUserInterface()
            super().__init__(None, None, False, "remediate", None, self.collecting_ui, __version__)
            self._lines: dict[Any, list[str]] = {}

        def run_method(
            self, method_identifier: Any, args: Any, runspace: Any, pipeline: Any = None
        ) -> Any:
            key = getattr(pipeline, "id", None)
            self.collecting_ui.stdout = self._lines.setdefault(key, [])
            return super().run_method(method_identifier, args, runspace, pipeline)

        def lines_of(self, pipeline_id: Any) -> list[str]:
            return self._lines.pop(pipeline_id, [])

    return CollectingHost()
