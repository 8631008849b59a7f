"""The fix options as command-line flags (``plan`` and ``apply``): the table of flags,
the playbooks' own inputs among them, and the FixOptions read back from argparse."""

from __future__ import annotations

import argparse
from typing import Any

from remediate.core.errors import PlaybookError, UsageError
from remediate.core.exchange import (
    AuthMechanism,
    ProtocolLoggingLevel,
    TlsAuthLevel,
)
from remediate.core.options import (
    ARGUMENTS,
    FixOptions,
    input_dest,
    input_flag,
    parse_enum,
    parse_input,
    parse_port,
)
from remediate.core.playbooks import (
    Input,
    extra_inputs,
    find,
    load_all,
)


def add_fix_arguments(parser: argparse.ArgumentParser, playbook_id: str | None = None) -> None:
    """Add the fix options (all of them, or only those ``playbook_id`` takes), with one more
    for each input a playbook declares beyond the built-in ones (``--fqdn``)."""
    books = (find(playbook_id),) if playbook_id is not None else load_all()
    names: Any = ARGUMENTS if playbook_id is None else books[0].input_names
    group = parser.add_argument_group("fix options")
    for name, (flags, kwargs) in ARGUMENTS.items():
        if name in names:
            group.add_argument(*flags, **{"dest": name, **kwargs})
    for item in extra_inputs(books).values():
        try:
            group.add_argument(
                input_flag(item.name), dest=input_dest(item.name), **_extra_kwargs(item)
            )
        except argparse.ArgumentError as exc:
            raise PlaybookError(
                f"{item.where}: inputs: {item.name!r}: its option {input_flag(item.name)} is "
                "already an option of the command; rename the input"
            ) from exc


def _extra_kwargs(item: Input) -> dict[str, Any]:
    help_text = item.help + (f" ({', '.join(item.choices)})" if item.choices else "")
    if item.type == "flag":
        return {"action": "store_const", "const": True, "default": None, "help": help_text}
    if item.type == "bool":
        return {"action": argparse.BooleanOptionalAction, "default": None, "help": help_text}
    if item.type == "hosts":
        return {"action": "append", "default": None, "metavar": "HOST", "help": help_text}
    return {"metavar": item.type.upper(), "help": help_text}


def fix_options_from_args(args: argparse.Namespace, connector: str | None = None) -> FixOptions:
    """Typed, validated FixOptions from parsed arguments (UsageError on bad values)."""
    get = vars(args).get
    name = connector if connector is not None else get("connector")
    if name is None:
        raise UsageError("--connector: give the Send connector's name")
    extra = []
    for item in extra_inputs(load_all()).values():
        raw = get(input_dest(item.name))
        if raw is not None:
            extra.append((item.name, parse_input(item, raw)))
    return FixOptions(
        connector=name,
        mechanism=parse_enum(AuthMechanism, get("mechanism"), "--mechanism"),
        username=get("username"),
        reenter_credential=bool(get("reenter_credential")),
        smart_hosts=tuple(get("smart_hosts") or ()),
        port=None if (port := get("port")) is None else parse_port(port),
        require_tls=get("require_tls"),
        tls_auth_level=parse_enum(TlsAuthLevel, get("tls_auth_level"), "--tls-auth-level"),
        tls_domain=get("tls_domain"),
        enable=get("enable"),
        protocol_logging=parse_enum(
            ProtocolLoggingLevel, get("protocol_logging"), "--protocol-logging"
        ),
        extra=tuple(extra),
    )
