"""The lab: a simulated Exchange organisation served over real WSMan + PSRP.

Layering, bottom up (each module knows only the ones below it):

- ``api``          the seam: CommandCall, LabObject, LabCredential, CmdletError, CommandRunner.
- Exchange half    ``org`` (organisation state, JSON file), ``rules``, ``cmdlets``
                   (``ExchangeShell``: one per shell, implements CommandRunner), ``transport``,
                   ``smarthost`` (aiosmtpd), ``certs`` (a small CA), ``seed``.
- Protocol half    ``wsman`` (SOAP envelopes), ``psrp_values`` (values across PSRP),
                   ``psrp_session`` (one psrpcore runspace pool per WSMan shell),
                   ``endpoint`` (WSMan actions -> shells), ``http_server`` (HTTP(S), the
                   login from ``auth`` with ``winrm_crypt`` message encryption, faults from
                   ``faults``).
- Server half     ``windows`` (``WindowsShell``: Test-NetConnection, Get-WinEvent, the
                   protocol-log files), ``netpath`` (the server's own network path),
                   ``protocol_log`` (the Send protocol log the transport writes).
- ``server.Lab``   composes them: starts the smart host, opens the organisation, serves
                   ``/PowerShell`` (Microsoft.Exchange) and ``/wsman`` (the server's default
                   WinRM endpoint, Microsoft.PowerShell), writes the ready file.

What ``Lab.start`` uses from the Exchange half (its seams, imported lazily):
``certs.LabCA.create()``, ``.write_ca_pem(path)``, ``.issue_server_cert(names, cert_file,
key_file)``; ``org.Organization.open(state_file, *, reset, smart_host=(host, port),
closed_port, config_delay)`` with ``.relay_user``, ``.relay_password``, optional ``.close()``;
``smarthost.SmartHost(listen=(host, port), ca=, relay_user=, relay_password=)`` with
``.start()``, ``.stop()``, ``.port``; ``cmdlets.ExchangeShell(org)``, one per WSMan shell.

Clients talk to it exactly as to Exchange: ``WSMan(host, port=..., path="PowerShell",
auth="ntlm")`` (NTLM with message encryption, the default; ``auth="basic",
encryption="never"`` with ``Lab(auth="basic")``) and ``RunspacePool(wsman,
configuration_name="Microsoft.Exchange")``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import socket
import ssl
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remediate.core.errors import UsageError
from remediate.lab.api import LabCredential
from remediate.lab.auth import AuthConfig, AuthMode
from remediate.lab.certs import LabCA
from remediate.lab.cmdlets import ExchangeShell
from remediate.lab.endpoint import (
    CONFIGURATION,
    MAX_SHELLS_PER_USER,
    POWERSHELL_CONFIGURATION,
    Endpoint,
)
from remediate.lab.faults import FaultInjector, Faults
from remediate.lab.http_server import PATH, WINRM_PATH, LabHTTPServer
from remediate.lab.netpath import ServerNetwork
from remediate.lab.org import Organization
from remediate.lab.protocol_log import ProtocolLog
from remediate.lab.psrp_session import MAX_COMMANDS_PER_SHELL
from remediate.lab.seed import extra_connectors
from remediate.lab.smarthost import SmartHost
from remediate.lab.windows import WindowsShell

ADMIN_USER = "administrator@contoso.lab"
MACHINE = "EX01"
# Seconds a connector change takes to reach the lab's transport (exchange-notes.md: AD
# replication and a configuration reload); 0 applies changes to deliveries at once.
CONFIG_DELAY = 2.0


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, what: str) -> Address:
        """``HOST:PORT``, ``[V6]:PORT`` or ``:PORT`` (loopback)."""
        host, sep, port_text = text.rpartition(":")
        if not sep or not port_text.isdigit() or int(port_text) > 65535:
            raise UsageError(f"{what} must be HOST:PORT (port 0-65535), not {text!r}")
        host = host.strip("[]") or "127.0.0.1"
        return cls(host, int(port_text))

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host


@dataclass(frozen=True)
class CmdletLatency:
    """Seconds a cmdlet takes on the server before it answers: ``by_cmdlet`` for the cmdlets
    named there (case-insensitive), ``default`` for every other one. Real servers spend time
    in Active Directory; the lab spends none unless asked (``--cmdlet-latency``)."""

    default: float = 0.0
    by_cmdlet: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = [self.default, *self.by_cmdlet.values()]
        if not all(v >= 0 for v in values):  # also refuses NaN
            raise UsageError("--cmdlet-latency must be zero or more milliseconds")
        object.__setattr__(self, "by_cmdlet", {k.lower(): v for k, v in self.by_cmdlet.items()})

    def __call__(self, cmdlet: str) -> float:
        return self.by_cmdlet.get(cmdlet.lower(), self.default)

    @classmethod
    def parse(cls, texts: list[str]) -> CmdletLatency:
        """``MS`` (every cmdlet) or ``Cmdlet-Name=MS`` (one cmdlet), each in milliseconds."""
        default, named = 0.0, {}
        for text in texts:
            name, sep, number = text.rpartition("=")
            try:
                seconds = float(number) / 1000
            except ValueError:
                raise UsageError(
                    f"--cmdlet-latency {text!r}: use MS or Cmdlet-Name=MS (milliseconds)"
                ) from None
            if sep and not name.strip():
                raise UsageError(f"--cmdlet-latency {text!r}: the cmdlet name is missing")
            if sep:
                named[name.strip()] = seconds
            else:
                default = seconds
        return cls(default, named)


class Lab:
    """Start with ``start()`` (or ``with Lab() as lab:``), stop with ``stop()``.

    Everything a client needs is an attribute once started: ``endpoint_url``, ``host``,
    ``port``, ``admin_user``, ``admin_password``, ``ca_file``, ``smtp_address``,
    ``relay_user``, ``relay_password``.
    """

    def __init__(
        self,
        *,
        listen: Address = Address("127.0.0.1", 0),
        smtp_listen: Address = Address("127.0.0.1", 0),
        state_file: Path | None = None,
        reset: bool = False,
        tls: bool = False,
        allow_remote: bool = False,
        admin_user: str = ADMIN_USER,
        admin_password: str | None = None,
        faults: Faults | None = None,
        workdir: Path | None = None,
        extra_connectors: int = 0,
        config_delay: float = CONFIG_DELAY,
        auth: AuthMode | str = AuthMode.NTLM,
        cmdlet_latency: CmdletLatency | None = None,
        max_shells_per_user: int = MAX_SHELLS_PER_USER,
        max_commands_per_shell: int = MAX_COMMANDS_PER_SHELL,
        deny_winrm: bool = False,
        server_routes: Mapping[Address, Address] | None = None,
    ) -> None:
        for address, what in ((listen, "--listen"), (smtp_listen, "--smtp-listen")):
            if not address.is_loopback and not allow_remote:
                raise UsageError(
                    f"{what} {address.host} is not a loopback address; the lab has a known "
                    "admin password and must not be reachable from the network",
                    hint="pass --allow-remote if you really mean it",
                )
        self.listen = listen
        self.smtp_listen = smtp_listen
        self.state_file = state_file
        self.reset = reset
        self.tls = tls
        self.admin_user = admin_user
        self.admin_password = admin_password or secrets.token_urlsafe(18)
        try:
            self.auth = AuthMode(str(auth).lower())
        except ValueError:
            allowed = ", ".join(m.value for m in AuthMode)
            raise UsageError(f"lab authentication {auth!r}: use one of {allowed}") from None
        self.faults = FaultInjector(faults or Faults())
        if extra_connectors < 0:
            raise UsageError("extra connectors must be zero or more")
        self.extra_connectors = extra_connectors  # see seed.extra_connectors
        if not config_delay >= 0:  # also refuses NaN
            raise UsageError("--config-delay must be zero or more seconds")
        self.config_delay = float(config_delay)
        self.cmdlet_latency = cmdlet_latency or CmdletLatency()
        if max_shells_per_user < 1 or max_commands_per_shell < 1:
            raise UsageError("the shell and command quotas must be 1 or more")
        self.max_shells_per_user = max_shells_per_user  # PowerShellMaxConcurrency
        self.max_commands_per_shell = max_commands_per_shell  # MaxConcurrentCommandsPerShell
        # The admin may not use the server's Microsoft.PowerShell endpoint (access denied).
        self.deny_winrm = deny_winrm
        # The server's own network path: a connection EX01 makes to a key goes to its value.
        self.server_routes = dict(server_routes or {})
        self._routes: dict[tuple[str, int], tuple[str, int]] = {}
        for source, target in self.server_routes.items():
            self._check_route(source, target)
        self._workdir = workdir
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self.ca_file: Path | None = None
        self.organization: Any = None
        self.smart_host: Any = None
        self._http: LabHTTPServer | None = None
        self._endpoint: Endpoint | None = None
        self._winrm: Endpoint | None = None
        self.protocol_log: Any = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        try:
            workdir = self._prepare_workdir()
            auth = AuthConfig.create(self.auth, self.admin_user, self.admin_password, workdir)
            ca = LabCA.create()
            self.ca_file = workdir / "lab-ca.pem"
            ca.write_ca_pem(self.ca_file)
            smtp_port = self.smtp_listen.port or _free_port(self.smtp_listen.host)
            self.organization = Organization.open(
                self.state_file,
                reset=self.reset,
                smart_host=(self.smtp_listen.host, smtp_port),
                closed_port=_free_port(self.smtp_listen.host, avoid=smtp_port),
                config_delay=self.config_delay,
            )
            if self.extra_connectors:
                self._add_extra_connectors()
            self.smart_host = SmartHost(
                listen=(self.smtp_listen.host, smtp_port),
                ca=ca,
                relay_user=self.relay_user,
                relay_password=self.relay_password,
            )
            self.smart_host.start()
            org = self.organization
            for source, target in self.server_routes.items():
                self._routes[(source.host, source.port)] = (target.host, target.port)
            network = ServerNetwork(self._routes)
            self.protocol_log = ProtocolLog(workdir / "protocol-log")
            for server in org.servers:  # Exchange setup creates them
                self.protocol_log.directory(server.name).mkdir(parents=True, exist_ok=True)
            org.network, org.protocol_log = network, self.protocol_log
            protocol_log = self.protocol_log
            tls_context = self._tls_context(ca, workdir) if self.tls else None
            self._endpoint = Endpoint(
                lambda: ExchangeShell(org),
                machine=MACHINE,
                url=f"{self._scheme}://{self.listen.url_host()}{PATH}",
                owner=self.admin_user,
                latency=self.cmdlet_latency,
                max_shells=self.max_shells_per_user,
                max_commands=self.max_commands_per_shell,
            )
            self._winrm = Endpoint(
                lambda: WindowsShell(org, network, protocol_log),
                machine=MACHINE,
                url=f"{self._scheme}://{self.listen.url_host()}{WINRM_PATH}",
                owner=self.admin_user,
                latency=self.cmdlet_latency,
                max_shells=self.max_shells_per_user,
                max_commands=self.max_commands_per_shell,
                configuration=POWERSHELL_CONFIGURATION,
                denied=self.deny_winrm,
            )
            self._http = LabHTTPServer(
                (self.listen.host, self.listen.port),
                self._endpoint,
                auth=auth,
                faults=self.faults,
                tls=tls_context,
                winrm=self._winrm,
            )
        except OSError as exc:
            self.stop()
            raise UsageError(f"the lab cannot start: {exc.strerror or exc}") from None
        except BaseException:
            self.stop()
            raise
        self._thread = threading.Thread(
            target=self._http.serve_forever, args=(0.1,), name="lab-http", daemon=True
        )
        self._thread.start()

    def _add_extra_connectors(self) -> None:
        org = self.organization
        org.add_connectors(
            extra_connectors(
                self.extra_connectors,
                smart_host=org.smart_host,
                relay=LabCredential(org.relay_user, org.relay_password),
                existing={c.name.lower() for c in org.connectors()},
            )
        )

    def stop(self) -> None:
        if self._http is not None:
            if self._thread is not None:
                self._http.shutdown()
            self._http.server_close()
            self._http = None
        for endpoint in (self._endpoint, self._winrm):
            if endpoint is not None:
                endpoint.close()
        self._endpoint = self._winrm = None
        if self.smart_host is not None:
            self.smart_host.stop()
            self.smart_host = None
        if self.organization is not None and hasattr(self.organization, "close"):
            self.organization.close()
        self._thread = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    # --- what clients need -----------------------------------------------------------------

    @property
    def _scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def host(self) -> str:
        return self.listen.host

    @property
    def port(self) -> int:
        if self._http is None:
            raise RuntimeError("the lab is not started")
        return int(self._http.server_address[1])

    @property
    def endpoint_url(self) -> str:
        return f"{self._scheme}://{self.listen.url_host()}:{self.port}{PATH}"

    def set_server_route(self, source: Address, target: Address) -> None:
        """From now on, connections the server makes to ``source`` go to ``target``."""
        self._check_route(source, target)
        self._routes[(source.host, source.port)] = (target.host, target.port)

    @staticmethod
    def _check_route(source: Address, target: Address) -> None:
        if not (source.is_loopback and target.is_loopback):
            raise UsageError("--server-route: both sides must be loopback HOST:PORT")

    @property
    def winrm_url(self) -> str:
        """The server's default WinRM endpoint (configuration Microsoft.PowerShell)."""
        return f"{self._scheme}://{self.listen.url_host()}:{self.port}{WINRM_PATH}"

    @property
    def endpoint(self) -> Endpoint:
        if self._endpoint is None:
            raise RuntimeError("the lab is not started")
        return self._endpoint

    @property
    def requests_seen(self) -> int:
        """HTTP requests (round trips) the endpoint has read since it started."""
        return self.faults.requests_seen

    @property
    def smtp_address(self) -> Address:
        return Address(self.smtp_listen.host, self.smart_host.port)

    @property
    def relay_user(self) -> str:
        return self.organization.relay_user

    @property
    def relay_password(self) -> str:
        return self.organization.relay_password

    def ready_info(self) -> dict[str, Any]:
        """What scripts and tests need to connect, secrets included (for a 0600 file)."""
        return {
            "endpoint": self.endpoint_url,
            "host": self.host,
            "port": self.port,
            "path": PATH.lstrip("/"),
            "ssl": self.tls,
            "auth": str(self.auth),
            "configuration_name": CONFIGURATION,
            "winrm_endpoint": self.winrm_url,
            "username": self.admin_user,
            "password": self.admin_password,
            "ca_file": str(self.ca_file) if self.tls and self.ca_file else None,
            "smtp": {"host": self.smtp_address.host, "port": self.smtp_address.port},
            "relay": {"username": self.relay_user, "password": self.relay_password},
            "state_file": str(self.state_file) if self.state_file else None,
            "config_delay": self.config_delay,
            "pid": os.getpid(),
        }

    def write_ready_file(self, path: Path) -> None:
        """Atomically write ``ready_info()`` as JSON, readable by the owner only."""
        write_private_json(path, self.ready_info())

    # --- internals -------------------------------------------------------------------------

    def _prepare_workdir(self) -> Path:
        if self._workdir is not None:
            self._workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
            return self._workdir
        self._tmpdir = tempfile.TemporaryDirectory(prefix="remediate-lab-")
        return Path(self._tmpdir.name)

    def _tls_context(self, ca: Any, workdir: Path) -> ssl.SSLContext:
        names = sorted({"localhost", self.listen.host})
        cert_file, key_file = workdir / "lab-server.pem", workdir / "lab-server.key"
        ca.issue_server_cert(names, cert_file, key_file)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_file, key_file)
        return context


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _free_port(host: str, avoid: int = 0) -> int:
    """A port on ``host`` that nothing listens on right now: for the smart host when no port
    was given (the organisation must know it before the smart host starts, which needs the
    relay account from the organisation) and as the closed port of the seeded 2002 connector."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        if port != avoid:
            return port
