"""Where the Exchange Management Shell endpoint is and how to reach it.

A ``Connection`` is everything but the password: server, port, path, scheme, authentication,
user, certificate validation, configuration name and timeouts. Connections are saved as named
profiles in ``config_dir()/profiles.json`` (remediate.core.paths; private, never a password) or
given ad hoc with ``--server URL``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from remediate.core.env import Environment
from remediate.core.errors import UsageError
from remediate.core.files import private_directory, write_file
from remediate.core.paths import config_dir
from remediate.core.pwsh import unsafe_character

DEFAULT_PATH = "/PowerShell"
DEFAULT_CONFIGURATION = "Microsoft.Exchange"
PROFILE_FILE = "profiles.json"
INSECURE_WARNING = (
    "remediate: WARNING: certificate validation is OFF (--insecure): anyone between this "
    "machine and {url} can read the admin and relay passwords"
)
BASIC_HTTP_WARNING = (
    "remediate: WARNING: Basic authentication over plain http: the admin password of {user} "
    "crosses the network readable by anyone between this machine and {url}; use https, or "
    "--auth kerberos or ntlm (WinRM message encryption)"
)


_PATH_FIELDS = ("ca_file", "certificate_file", "certificate_key_file")


class AuthMethod(StrEnum):
    KERBEROS = "kerberos"
    NEGOTIATE = "negotiate"
    NTLM = "ntlm"
    BASIC = "basic"
    CREDSSP = "credssp"
    CERTIFICATE = "certificate"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Connection:
    server: str
    port: int
    path: str = DEFAULT_PATH
    scheme: str = "http"
    auth: AuthMethod = AuthMethod.KERBEROS
    username: str | None = None
    verify: bool = True
    ca_file: Path | None = None
    configuration_name: str = DEFAULT_CONFIGURATION
    connect_timeout: float = 30.0
    operation_timeout: float = 60.0
    profile: str | None = None
    # --auth certificate: client certificate and its (unencrypted) private key, PEM files
    certificate_file: Path | None = None
    certificate_key_file: Path | None = None
    # Kerberos: the host name in the SPN (host/NAME) when the URL's name has none, as for a
    # load-balanced name (pypsrp's negotiate_hostname_override)
    spn_host: str | None = None

    @property
    def url(self) -> str:
        host = f"[{self.server}]" if ":" in self.server else self.server
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    @property
    def label(self) -> str:
        """How messages, audit entries and reports name this endpoint."""
        return self.profile or self.url

    @property
    def secret_key(self) -> str:
        """The keyring key of this endpoint's admin password."""
        return f"{self.label}|{self.username or ''}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["auth"] = str(self.auth)
        for name in _PATH_FIELDS:
            value = getattr(self, name)
            data[name] = str(value) if value else None
        data.pop("profile")
        return data

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> Connection:
        try:
            values = dict(data)
            values["auth"] = AuthMethod(values.get("auth", "kerberos"))
            for field in _PATH_FIELDS:
                values[field] = Path(values[field]) if values.get(field) else None
            return cls(profile=name, **values)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"profile {name!r} is damaged: {exc}") from None


def parse_server(text: str, *, port: int | None = None, https: bool | None = None) -> Connection:
    """``http(s)://host[:port][/path]`` or a bare host name (http, port 80/443 as WinRM's
    Exchange endpoint uses IIS)."""
    if not text.strip() or unsafe_character(text) is not None or " " in text.strip():
        raise UsageError(
            f"--server {text!r}: give a URL such as http://ex01.contoso.com/PowerShell"
        )
    text = text.strip()
    if "://" not in text:
        text = ("https://" if https else "http://") + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"--server {text!r}: use http:// or https:// and a host name",
            hint="for example http://ex01.contoso.com/PowerShell",
        )
    if parts.query or parts.fragment or parts.username:
        raise UsageError(f"--server {text!r}: no user, query or fragment in the URL (use --user)")
    try:
        url_port = parts.port
    except ValueError:
        raise UsageError(f"--server {text!r}: the port is not a number from 1 to 65535") from None
    default_port = 443 if parts.scheme == "https" else 80
    return Connection(
        server=parts.hostname,
        port=port or url_port or default_port,
        path=parts.path.rstrip("/") or DEFAULT_PATH,
        scheme=parts.scheme,
    )


# --- profiles ------------------------------------------------------------------------------


class ProfileStore:
    """Named connections in one JSON file (mode 0600, written atomically; no passwords)."""

    def __init__(self, path: Path | None = None, environ: dict[str, str] | None = None) -> None:
        self.path = path or config_dir(environ) / PROFILE_FILE

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise UsageError(f"{self.path} cannot be read: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("profiles", {}), dict):
            raise UsageError(f"{self.path} is not a remediate profile file")
        return data.get("profiles", {})

    def _write(self, profiles: dict[str, dict[str, Any]]) -> None:
        private_directory(self.path.parent)
        text = json.dumps({"profiles": profiles}, indent=2, sort_keys=True) + "\n"
        write_file(self.path, text, what="the profile file", private=True)

    def list(self) -> list[Connection]:
        return [Connection.from_json(n, d) for n, d in sorted(self._read().items())]

    def get(self, name: str) -> Connection:
        profiles = self._read()
        if name not in profiles:
            known = ", ".join(sorted(profiles)) or "none saved yet"
            raise UsageError(
                f"no connection profile named {name!r} (profiles: {known})",
                hint="save one with: remediate connect add NAME --server URL --user USER",
            )
        return Connection.from_json(name, profiles[name])

    def save(self, connection: Connection) -> None:
        if not connection.profile:
            raise UsageError("a profile needs a name")
        profiles = self._read()
        profiles[connection.profile] = connection.to_json()
        self._write(profiles)

    def remove(self, name: str) -> None:
        profiles = self._read()
        if name not in profiles:
            raise UsageError(f"no connection profile named {name!r}")
        del profiles[name]
        self._write(profiles)


# --- command-line options -------------------------------------------------------------------


def check_profile_name(name: str) -> str:
    if not name or unsafe_character(name) is not None or "|" in name or len(name) > 64:
        raise UsageError(f"profile name {name!r}: use up to 64 printable characters, no '|'")
    return name


def add_connection_arguments(parser: argparse.ArgumentParser, *, profile: bool = True) -> None:
    group = parser.add_argument_group("connection")
    if profile:
        group.add_argument("--profile", metavar="NAME", help="a saved connection profile")
    group.add_argument(
        "--server",
        metavar="URL",
        help="the endpoint, e.g. http://ex01.contoso.com/PowerShell (overrides the profile)",
    )
    group.add_argument(
        "--auth",
        choices=[m.value for m in AuthMethod],
        help="authentication (default kerberos)",
    )
    group.add_argument("--user", metavar="USER", help="admin user name (UPN or DOMAIN\\user)")
    group.add_argument(
        "--spn-host",
        metavar="NAME",
        help="Kerberos: the server name in the SPN (host/NAME) when --server is a "
        "load-balanced or other name without its own SPN",
    )
    group.add_argument("--ca-file", metavar="PEM", help="CA bundle to validate the certificate")
    group.add_argument(
        "--certificate", metavar="PEM", help="client certificate for --auth certificate (https)"
    )
    group.add_argument("--certificate-key", metavar="PEM", help="its private key (unencrypted PEM)")
    group.add_argument(
        "--insecure",
        action="store_true",
        help="do NOT validate the server certificate (prints a warning every run)",
    )
    group.add_argument(
        "--configuration-name",
        metavar="NAME",
        help=f"PowerShell session configuration (default {DEFAULT_CONFIGURATION})",
    )
    group.add_argument("--connect-timeout", type=float, metavar="SECONDS")
    group.add_argument("--operation-timeout", type=float, metavar="SECONDS")
    group.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the admin password (line 1) and, if needed, the relay password (line 2) "
        "from stdin instead of the keyring or a prompt",
    )


def connection_from_args(
    args: argparse.Namespace, env: Environment, *, store: ProfileStore | None = None
) -> Connection:
    """The connection the options describe: a profile, overridden by explicit flags."""
    name = getattr(args, "profile", None)
    if name:
        base = (store or ProfileStore(environ=env.environ)).get(name)
    elif args.server:
        base = Connection(server="", port=0)
    else:
        raise UsageError(
            "no Exchange endpoint: give --profile NAME or --server URL",
            hint="list saved profiles with 'remediate connect list'",
        )
    changes: dict[str, Any] = {}
    if args.server:
        parsed = parse_server(args.server)
        changes.update(
            server=parsed.server, port=parsed.port, path=parsed.path, scheme=parsed.scheme
        )
    if args.auth:
        changes["auth"] = AuthMethod(args.auth)
    if args.user:
        if unsafe_character(args.user) is not None:
            raise UsageError("--user: the user name contains a control character")
        changes["user"] = args.user
    spn = getattr(args, "spn_host", None)
    if spn:
        changes["spn_host"] = check_spn_host(spn, "--spn-host")
    for option, field in (
        ("ca_file", "ca_file"),
        ("certificate", "certificate_file"),
        ("certificate_key", "certificate_key_file"),
    ):
        given = getattr(args, option, None)
        if given:
            changes[field] = _existing_file(given, "--" + option.replace("_", "-"))
    if args.insecure:
        changes["verify"] = False
    if args.configuration_name:
        if unsafe_character(args.configuration_name) is not None:
            raise UsageError("--configuration-name contains a control character")
        changes["configuration_name"] = args.configuration_name
    for option in ("connect_timeout", "operation_timeout"):
        value = getattr(args, option)
        if value is not None:
            if value <= 0:
                raise UsageError(f"--{option.replace('_', '-')} must be more than 0 seconds")
            changes[option] = value
    if "user" in changes:
        changes["username"] = changes.pop("user")
    connection = replace(base, **changes)
    _check_certificate_auth(connection)
    if connection.scheme == "https" and not connection.verify:
        env.err(INSECURE_WARNING.format(url=connection.url))
    elif not connection.verify:
        env.err("remediate: note: --insecure has no effect over http (nothing is validated)")
    return connection


def check_spn_host(value: str, what: str) -> str:
    """A host name for the SPN: letters, digits, dots and dashes only."""
    text = value.strip()
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
    if not text or len(text) > 253 or not set(text) <= allowed:
        raise UsageError(
            f"{what} {value!r}: give a host name such as ex01.contoso.com",
            hint="the SPN is host/NAME; NAME is the server's own DNS name",
        )
    return text


def warn_basic_over_http(connection: Connection, err: Any) -> None:
    """Loudly, every time: a Basic password would cross the network in clear text."""
    if connection.auth is AuthMethod.BASIC and connection.scheme == "http":
        err(BASIC_HTTP_WARNING.format(user=connection.username, url=connection.url))


def _existing_file(given: str, option: str) -> Path:
    path = Path(given).expanduser()
    if not path.is_file():
        raise UsageError(f"{option} {given}: no such file")
    return path.resolve()


def _check_certificate_auth(connection: Connection) -> None:
    """Certificate authentication needs https and both PEM files; the files need it."""
    has_files = connection.certificate_file or connection.certificate_key_file
    if connection.auth is not AuthMethod.CERTIFICATE:
        if has_files:
            raise UsageError("--certificate and --certificate-key need --auth certificate")
        return
    if connection.scheme != "https":
        raise UsageError("--auth certificate needs an https:// endpoint")
    if not (connection.certificate_file and connection.certificate_key_file):
        raise UsageError("--auth certificate needs --certificate PEM and --certificate-key PEM")
