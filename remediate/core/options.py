"""The fix options one connector's plan takes, and their rules: the settings typed and
validated the same way for the command line, the wizard, answers files, bulk rows and the
API (a host, a port in Set-SendConnector's 0-65535, a playbook's own inputs)."""

from __future__ import annotations

import argparse
import ipaddress
import re
from dataclasses import dataclass, fields
from typing import Any

from remediate.core import preflight
from remediate.core.errors import OptionError
from remediate.core.exchange import (
    AuthMechanism,
    ProtocolLoggingLevel,
    TlsAuthLevel,
    smart_host_key,
)
from remediate.core.plan import (
    ParamValue,
)
from remediate.core.playbooks import (
    Input,
)
from remediate.core.pwsh import unsafe_character

# input name -> (flags, argparse keyword arguments)
ARGUMENTS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "mechanism": (
        ("--mechanism",),
        {
            "metavar": "NAME",
            "help": "SmartHostAuthMechanism: " + ", ".join(m.value for m in AuthMechanism),
        },
    ),
    "username": (
        ("--username",),
        {
            "metavar": "USER",
            "help": "relay account user name; the password is asked for by "
            "Get-Credential in the script, or taken from the keyring by apply",
        },
    ),
    "reenter_credential": (
        ("--reenter-credential",),
        {
            "action": "store_true",
            "default": False,
            "help": "send the credential again although the connector holds one "
            "(it cannot be compared)",
        },
    ),
    "smart_hosts": (
        ("--smart-host",),
        {
            "dest": "smart_hosts",
            "action": "append",
            "default": None,
            "metavar": "HOST",
            "help": "smart host name or IP address (repeat for several)",
        },
    ),
    "port": (("--port",), {"metavar": "N", "help": "smart host port, 0-65535"}),
    "require_tls": (
        ("--require-tls",),
        {"action": argparse.BooleanOptionalAction, "default": None, "help": "RequireTLS"},
    ),
    "tls_auth_level": (
        ("--tls-auth-level",),
        {"metavar": "LEVEL", "help": "TlsAuthLevel: " + ", ".join(t.value for t in TlsAuthLevel)},
    ),
    "tls_domain": (
        ("--tls-domain",),
        {"metavar": "DOMAIN", "help": "TlsDomain (with DomainValidation)"},
    ),
    "enable": (
        ("--enable",),
        {"action": "store_const", "const": True, "default": None, "help": "enable the connector"},
    ),
    "protocol_logging": (
        ("--protocol-logging",),
        {"metavar": "LEVEL", "help": "ProtocolLoggingLevel: None or Verbose"},
    ),
}


_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class FixOptions:
    """What the operator asked to change; None/empty means "leave as it is". Validated on
    construction (``UsageError`` naming the option)."""

    connector: str
    mechanism: AuthMechanism | None = None
    username: str | None = None
    reenter_credential: bool = False
    smart_hosts: tuple[str, ...] = ()
    port: int | None = None
    require_tls: bool | None = None
    tls_auth_level: TlsAuthLevel | None = None
    tls_domain: str | None = None
    enable: bool | None = None
    protocol_logging: ProtocolLoggingLevel | None = None
    # inputs a playbook declares beyond the ones above: (name, value), typed and validated
    # by ``parse_input``
    extra: tuple[tuple[str, ParamValue], ...] = ()

    def __post_init__(self) -> None:
        _check_text(self.connector, "--connector", "the Send connector's name")
        if self.username is not None:
            _check_text(self.username, "--username", "the relay account's user name")
            if len(self.username) > preflight.MAX_CREDENTIAL_LENGTH:
                raise OptionError(
                    "--username",
                    f"{len(self.username)} characters is more than the "
                    f"{preflight.MAX_CREDENTIAL_LENGTH} Exchange accepts",
                )
        for host in self.smart_hosts:
            check_host(host, "--smart-host")
        if len({smart_host_key(h) for h in self.smart_hosts}) != len(self.smart_hosts):
            raise OptionError("--smart-host", "the same smart host is given twice")
        if self.port is not None:
            parse_port(self.port)
        if self.tls_domain is not None:
            check_host(self.tls_domain.removeprefix("*."), "--tls-domain", allow_ip=False)

    def given(self) -> frozenset[str]:
        """Names of the options that ask for something (the connector name aside)."""
        defaults = {f.name: f.default for f in fields(self)}
        builtin = {
            f.name
            for f in fields(self)
            if f.name not in ("connector", "extra") and getattr(self, f.name) != defaults[f.name]
        }
        return frozenset(builtin | {name for name, value in self.extra if value is not None})

    def value(self, name: str) -> ParamValue:
        """The value of input ``name`` (None when not given)."""
        if name in ARGUMENTS:
            value: ParamValue = getattr(self, name)
            return None if value == () else value
        return dict(self.extra).get(name)


def _check_text(value: str, option: str, what: str) -> None:
    if not value or not value.strip():
        raise OptionError(option, f"{what} is empty")
    bad = unsafe_character(value)
    if bad is not None:
        raise OptionError(
            option,
            f"contains the control character U+{ord(bad):04X}; give {what} "
            "without line breaks, tabs or other invisible characters",
        )


def check_host(host: str, option: str, *, allow_ip: bool = True) -> str:
    """A DNS name or (when allowed) an IP address, bracketed as Exchange writes it
    (``[10.0.0.5]``) or not, or UsageError naming ``option``."""
    bracketed = host.startswith("[") and host.endswith("]")
    try:
        ipaddress.ip_address(host[1:-1] if bracketed else host)
    except ValueError:
        pass
    else:
        if allow_ip:
            return host
        raise OptionError(option, f"{host!r} is an IP address; give a domain name")
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise OptionError(
            option,
            f"{host!r} is not a host name"
            + (" or IP address" if allow_ip else "")
            + " (letters, digits and hyphens, labels separated by dots)",
        )
    if labels[-1].isdigit():
        raise OptionError(option, f"{host!r} looks like a mistyped IP address")
    return host


def input_flag(name: str) -> str:
    """The command-line option of input ``name``."""
    known = ARGUMENTS.get(name)
    return known[0][0] if known else "--" + name.replace("_", "-")


def input_dest(name: str) -> str:
    """The argparse destination of a playbook's own input."""
    return "input_" + name


def parse_input(item: Input, raw: Any) -> ParamValue:
    """The typed value of a playbook's own input (``GENERIC_TYPES``), or UsageError naming
    its option."""
    option = input_flag(item.name)
    if item.type in ("flag", "bool"):
        if isinstance(raw, str):
            lowered = raw.strip().lower()
            if lowered not in ("true", "false", "yes", "no", "y", "n"):
                raise OptionError(option, f"{raw!r} is not yes or no")
            return lowered in ("true", "yes", "y")
        return bool(raw)
    if item.type == "hosts":
        hosts = raw.split(",") if isinstance(raw, str) else list(raw)
        values = tuple(h.strip() for h in hosts if h.strip())
        if not values:
            raise OptionError(option, "give at least one host name or IP address")
        return tuple(check_host(h, option) for h in values)
    text = str(raw).strip()
    if item.type in ("port", "int"):
        low = item.minimum if item.minimum is not None else 0
        high = (
            item.maximum if item.maximum is not None else (65535 if item.type == "port" else None)
        )
        span = f"{low}-{high}" if high is not None else f"{low} or more"
        if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
            raise OptionError(option, f"{text!r} is not a number {span}")
        return int(text)
    _check_text(text, option, item.help)
    if item.max_length is not None and len(text) > item.max_length:
        raise OptionError(option, f"longer than {item.max_length} characters")
    if item.choices:
        match = next((c for c in item.choices if c.lower() == text.lower()), None)
        if match is None:
            raise OptionError(option, f"{text!r} is not one of: {', '.join(item.choices)}")
        return match
    if item.type == "domain":
        return check_host(text, option, allow_ip=False)
    if item.type == "host":
        return check_host(text, option)
    return text


def parse_enum(enum: Any, text: str | None, option: str) -> Any:
    if text is None:
        return None
    try:
        return enum.parse(text)
    except ValueError as exc:
        raise OptionError(option, str(exc)) from exc


def port_number(value: object) -> int:
    """``value`` as a Send connector port: Set-SendConnector -Port takes 0-65535
    (exchange-notes.md, from Microsoft's Set-SendConnector page). ValueError otherwise; the
    command line, the wizard, answers and bulk files all use this one rule."""
    text = "" if isinstance(value, bool) else str(value).strip()
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        shown = text if text.isdigit() else repr(value)
        raise ValueError(f"{shown} is not a port number (0-65535)")
    return int(text)


def parse_port(text: str | int, option: str = "--port") -> int:
    """``port_number`` with the failure as an OptionError naming ``option`` (the wizard
    names its question, ``port``)."""
    try:
        return port_number(text)
    except ValueError as exc:
        raise OptionError(option, str(exc)) from None
