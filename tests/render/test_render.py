"""Rendering: golden scripts for both playbooks, and each step's command against the oracles."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import jinja2
import pytest

from remediate.core import preflight
from remediate.core.errors import TemplateError
from remediate.core.exchange import (
    AuthMechanism,
    CredentialState,
    ProtocolLoggingLevel,
    SendConnector,
    TlsAuthLevel,
)
from remediate.core.files import script_bytes, write_script
from remediate.core.options import FixOptions
from remediate.core.plan import CredentialRef, Parameter, ParamValue, Plan, Step, StepKind, Switch
from remediate.core.planner import build_plan
from remediate.core.playbooks import find
from remediate.core.pwsh import credential_variables
from remediate.core.resources import templates_dir
from remediate.core.undo import undo_plan
from remediate.render.script import environment, render_script, render_step
from tests.pwsh_oracle import CRED_LINE, check_line, decode

GOLDEN = Path(__file__).parent.parent / "golden"
AT = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
NAME = "Outbound to Relay"
USER = "relay@contoso.com"
BROKEN = SendConnector(
    name=NAME,
    guid="6f1c0c1e-0000-4000-8000-000000000001",
    smart_hosts=("localhost",),
    dns_routing_enabled=False,
    smart_host_auth_mechanism=AuthMechanism.BASIC_AUTH_REQUIRE_TLS,
    port=25,
    source_transport_servers=("EX01", "EX02"),  # one queue per source server
)


def _plans() -> dict[str, Plan]:
    auth, conn = find("2016"), find("2002")
    newcomer = FixOptions(
        connector=NAME,
        mechanism=AuthMechanism.BASIC_AUTH_REQUIRE_TLS,
        username=USER,
        smart_hosts=("smtp.relay.example",),
        port=587,
    )
    tls = FixOptions(
        connector="Relay ‘EU’ $(x)",
        username="o'brien@contoso.com",
        smart_hosts=("relay1.example", "relay2.example"),
        require_tls=True,
        tls_auth_level=TlsAuthLevel.DOMAIN_VALIDATION,
        tls_domain="relay.example",
        mechanism=AuthMechanism.BASIC_AUTH,
    )
    fix_lab = FixOptions(connector=NAME, username="relay@contoso.lab", port=2525)
    applied = build_plan(
        auth,
        FixOptions(
            connector=NAME,
            mechanism=AuthMechanism.BASIC_AUTH,
            username=USER,
            smart_hosts=("smtp.relay.example",),
            port=587,
        ),
        current=SendConnector(name=NAME, guid="g-1"),
    )
    return {
        "2016-newcomer": build_plan(auth, newcomer),
        "2016-tls-quotes": build_plan(auth, tls, what_if=True),
        "2016-current-whatif": build_plan(auth, fix_lab, current=BROKEN, what_if=True),
        "2016-no-change": build_plan(
            auth, fix_lab, current=BROKEN.replace(port=2525, credential=CredentialState.SET)
        ),
        "2002-offline": build_plan(
            conn,
            FixOptions(
                connector="Outbound to Partner",
                smart_hosts=("mx.partner.example",),
                port=25,
                enable=True,
                protocol_logging=ProtocolLoggingLevel.VERBOSE,
            ),
        ),
        "2016-undo": undo_plan(SendConnector(name=NAME, guid="g-1"), applied),
    }


PLANS = _plans()


@pytest.mark.parametrize("name", sorted(PLANS))
def test_golden_script(name: str) -> None:
    """The bytes a script file gets: UTF-8 with BOM and CRLF (Windows PowerShell 5.1 reads a
    BOM-less file as ANSI), so the golden files are compared byte for byte."""
    data = script_bytes(render_script(PLANS[name], generated_at=AT))
    path = GOLDEN / f"{name}.ps1"
    if os.environ.get("REMEDIATE_UPDATE_GOLDEN") == "1":
        path.write_bytes(data)
    golden = path.read_bytes()
    assert golden.startswith(b"\xef\xbb\xbf")
    assert b"\n" not in golden.replace(b"\r\n", b"")  # every line ends CRLF
    assert data == golden


def test_script_bytes_keep_a_chinese_name_for_windows_powershell(tmp_path: Path) -> None:
    """What PowerShell 5.1 does with a file: a UTF-8 BOM makes it read UTF-8 (without one:
    the ANSI code page); the name survives the round trip, lines end CRLF."""
    plan = build_plan(find("2002"), FixOptions(connector="发送到中继 Köln", port=25))
    written = write_script(tmp_path / "fix.ps1", render_script(plan, generated_at=AT), what="x")
    raw = written.read_bytes()
    assert raw[:3] == b"\xef\xbb\xbf"
    text = raw[3:].decode("utf-8")
    assert "'发送到中继 Köln'" in text
    assert text.count("\r\n") == text.count("\n") > 5


def _expected_arguments(value: ParamValue, variables: dict[CredentialRef, str]) -> list[str]:
    """What each argument must decode to, worked out without remediate.core.pwsh."""
    if isinstance(value, bool):
        return ["$true" if value else "$false"]
    if value is None or value == ():
        return ["$null"]
    if isinstance(value, int):
        return [str(value)]
    if isinstance(value, CredentialRef):
        return [variables[value]]
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Switch):
        return []
    return [str(getattr(value, "value", value))]


@pytest.mark.parametrize("name", sorted(PLANS))
def test_each_step_renders_its_cmdlet_and_exactly_its_parameters(name: str) -> None:
    plan = PLANS[name]
    variables = credential_variables(plan.credentials)
    for step in plan.steps:
        parsed = check_line(render_step(step, variables))
        assert parsed.cmdlet == step.cmdlet
        assert [n for n, _ in parsed.parameters] == [p.name for p in step.parameters]
        for (_, args), p in zip(parsed.parameters, step.parameters, strict=True):
            got = [decode(a) if a[0] in "'\u2018\u2019\u201a\u201b" else a for a in args]
            assert got == _expected_arguments(p.value, variables), p


@pytest.mark.parametrize("name", sorted(PLANS))
def test_script_lines_are_comments_blank_credentials_or_checked_commands(name: str) -> None:
    plan = PLANS[name]
    script = render_script(plan, generated_at=AT)
    commands = []
    for line in script.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("$cred"):
            match = CRED_LINE.fullmatch(line)
            assert match, line
            check_line(line.split(" = ", 1)[1])
            continue
        commands.append(check_line(line))
    assert [c.cmdlet for c in commands] == [s.cmdlet for s in plan.steps]
    assert "ConvertTo-SecureString" not in script
    declared = [line for line in script.splitlines() if line.startswith("$cred")]
    assert len(declared) == len(plan.credentials)
    for parsed, step in zip(commands, plan.steps, strict=True):
        names = [n for n, _ in parsed.parameters]
        assert ("WhatIf" in names) == (plan.what_if and step.is_change)
        assert ("Confirm" in names) == step.is_change


def test_credential_declared_once_before_first_use() -> None:
    cred = CredentialRef(USER, "remediate:relay", USER, purpose="Relay password")

    def set_step() -> Step:
        return Step(
            "Set-SendConnector",
            (Parameter("Identity", NAME), Parameter("AuthenticationCredential", cred)),
            StepKind.CHANGE,
            "r",
            "set_send_connector_auth.ps1.j2",
        )

    script = render_script(Plan("p", 2016, NAME, (set_step(), set_step())), generated_at=AT)
    lines = script.splitlines()
    declare = lines.index(
        "$cred = Get-Credential -UserName 'relay@contoso.com' -Message 'Relay password'"
    )
    uses = [i for i, line in enumerate(lines) if line.endswith("-AuthenticationCredential $cred")]
    assert len(uses) == 2 and declare < uses[0]


def test_header_names_playbook_event_connector_and_time() -> None:
    plan = PLANS["2016-newcomer"]
    local = AT.astimezone(timezone(timedelta(hours=2)))
    head = render_script(plan, generated_at=local).splitlines()[:4]
    assert head[1] == "# Playbook:  smarthost-auth-credential (event 2016)"
    assert head[2] == "# Connector: 'Outbound to Relay'"
    assert head[3] == "# Generated: 2026-01-15 09:30:00 UTC"


def test_a_template_refuses_parameters_outside_its_shape() -> None:
    step = Step(
        "Set-SendConnector",
        (Parameter("Identity", NAME), Parameter("Port", 25)),
        StepKind.CHANGE,
        "r",
        "set_send_connector_tls.ps1.j2",
    )
    with pytest.raises(TemplateError, match=r"does not take parameter.*Port"):
        render_step(step)


def test_missing_template_is_a_template_error() -> None:
    step = Step("Get-Mailbox", (), StepKind.READ, "r", "get_mailbox.ps1.j2")
    with pytest.raises(TemplateError, match=r"get_mailbox\.ps1\.j2 does not exist"):
        render_step(step)


def test_strict_undefined() -> None:
    with pytest.raises(jinja2.UndefinedError):
        environment().get_template("script.ps1.j2").render()


def test_every_template_is_used() -> None:
    used = {s.template for plan in PLANS.values() for s in plan.steps} | {"script.ps1.j2"}
    on_disk = {p.name for p in templates_dir().glob("*.ps1.j2")}
    assert on_disk == used


def test_rendering_is_pure_over_the_plan() -> None:
    plan = PLANS["2016-current-whatif"]
    after = preflight.check(plan.changes, BROKEN).after
    assert after is not None and after.credential is CredentialState.SET
    assert render_script(plan, generated_at=AT) == render_script(plan, generated_at=AT)


def test_comment_text_cannot_break_out_of_its_line() -> None:
    from remediate.core.errors import UnsafeValueError

    step = Step(
        "Get-SendConnector",
        (Parameter("Identity", NAME),),
        StepKind.READ,
        "why\nRemove-SendConnector -Identity x",
        "get_send_connector.ps1.j2",
    )
    with pytest.raises(UnsafeValueError):
        render_script(Plan("p", 2016, NAME, (step,)), generated_at=AT)
    with pytest.raises(UnsafeValueError):
        render_script(Plan("p", 2016, NAME, (), notes=("a\rb",)), generated_at=AT)
