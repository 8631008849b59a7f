"""PowerShell literals and values: unit cases plus property tests against two oracles."""

from __future__ import annotations

import unicodedata
from enum import Enum

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from remediate.core.errors import UnsafeValueError
from remediate.core.exchange import AuthMechanism
from remediate.core.plan import SWITCH, CredentialRef, Parameter, Step, StepKind
from remediate.core.pwsh import (
    credential_variables,
    ps_literal,
    ps_parameter,
    ps_value,
    unsafe_character,
)
from remediate.render.script import render_step
from tests.pwsh_oracle import CRED_LINE, check_line, decode

NASTY = [
    "Outbound to Relay",
    "it's",
    "a’; Stop-Service MSExchangeTransport; ’b",
    "‘‚‛’'",
    "$(Stop-Service x)",
    "`whoami`",
    "a;b|c&d",
    '"double" “curly” „low“',
    "''",
    "",
    "ü 中文 🙂‍🙂",
    "x -WhatIf:$false",
]


@pytest.mark.parametrize("text", NASTY)
def test_literal_round_trips(text: str) -> None:
    literal = ps_literal(text)
    assert decode(literal) == text


def test_every_single_quote_character_is_doubled() -> None:
    assert (
        ps_literal("'\u2018\u2019\u201a\u201b")
        == "'''\u2018\u2018\u2019\u2019\u201a\u201a\u201b\u201b'"
    )


@pytest.mark.parametrize(
    "text",
    [
        "a\nb",
        "a\rb",
        "tab\there",
        "nul\x00",
        "esc\x1b[0m",
        "nel\x85",
        "ls\u2028",
        "ps\u2029",
        "rlo\u202egnp.exe",
        "lri\u2066x",
        "lrm\u200e",
    ],
)
def test_control_and_bidi_characters_are_refused(text: str) -> None:
    with pytest.raises(UnsafeValueError, match="U\\+"):
        ps_literal(text, "--connector")


def test_harmless_format_characters_are_kept() -> None:
    # zero-width joiner (in emoji) and soft hyphen are category Cf but cannot break a line
    for text in ("🙂\u200d🙂", "Relay\u00adHost"):
        assert decode(ps_literal(text)) == text


def test_values() -> None:
    class Color(Enum):
        RED = "Red"

    cred = CredentialRef("u", "remediate:relay", "u")
    assert ps_value(True) == "$true"
    assert ps_value(False) == "$false"
    assert ps_value(587) == "587"
    assert ps_value(None) == "$null"
    assert ps_value(()) == "$null"
    assert ps_value(("a", "b'c")) == "'a','b''c'"
    assert ps_value(AuthMechanism.BASIC_AUTH) == "'BasicAuth'"
    assert ps_value(Color.RED) == "'Red'"
    assert ps_value(cred, {cred: "$cred"}) == "$cred"
    with pytest.raises(ValueError, match="no variable"):
        ps_value(cred)


def test_parameters() -> None:
    assert ps_parameter(Parameter("WhatIf", SWITCH)) == "-WhatIf"
    assert ps_parameter(Parameter("Confirm", False)) == "-Confirm:$false"
    assert ps_parameter(Parameter("RequireTLS", True)) == "-RequireTLS $true"
    assert ps_parameter(Parameter("Port", 25)) == "-Port 25"
    with pytest.raises(ValueError, match="parameter name"):
        ps_parameter(Parameter("Port; rm", 25))


def test_credential_variables_are_numbered() -> None:
    a = CredentialRef("a", "s", "a")
    b = CredentialRef("b", "s", "b")
    assert credential_variables((a, b)) == {a: "$cred", b: "$cred2"}


def _identity_step(name: str, hosts: tuple[str, ...] = ()) -> Step:
    params = [Parameter("Identity", name)]
    if hosts:
        params.append(Parameter("SmartHosts", hosts))
    params += [Parameter("Port", 587), Parameter("Confirm", False), Parameter("WhatIf", SWITCH)]
    return Step(
        "Set-SendConnector",
        tuple(params),
        StepKind.CHANGE,
        "test",
        "set_send_connector_routing.ps1.j2",
    )


def _has_unsafe(text: str) -> bool:
    # Written independently of remediate.core.pwsh: what the project decided to refuse.
    bidi = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    return any(
        unicodedata.category(c) in ("Cc", "Cs") or c in "\u2028\u2029" or c in bidi for c in text
    )


QUOTE_HEAVY = st.text(alphabet=st.sampled_from(list("'‘’‚‛\"“”$()`;|&-: \nab")), max_size=30)


@given(st.one_of(st.text(), QUOTE_HEAVY))
@example("a’; Stop-Service x; ’b")
@example("x'\n-Confirm:$true")
def test_any_connector_name_renders_as_one_literal_or_is_refused(name: str) -> None:
    assert (unsafe_character(name) is not None) == _has_unsafe(name)
    step = _identity_step(name, (name, "relay.example"))
    if _has_unsafe(name):
        with pytest.raises(UnsafeValueError):
            render_step(step)
        return
    line = render_step(step)
    parsed = check_line(line)
    assert parsed.cmdlet == "Set-SendConnector"
    assert [p for p, _ in parsed.parameters] == [
        "Identity",
        "SmartHosts",
        "Port",
        "Confirm",
        "WhatIf",
    ]
    identity, hosts = parsed.parameters[0][1], parsed.parameters[1][1]
    assert len(identity) == 1 and decode(identity[0]) == name
    assert [decode(h) for h in hosts] == [name, "relay.example"]
    assert parsed.colon == {"Confirm"}


@given(st.one_of(st.text(), QUOTE_HEAVY))
def test_any_user_name_renders_as_one_literal_or_is_refused(user: str) -> None:
    from remediate.core.plan import Plan
    from remediate.render.script import render_script

    cred = CredentialRef(user, "remediate:relay", user)
    step = Step(
        "Set-SendConnector",
        (
            Parameter("Identity", "C"),
            Parameter("AuthenticationCredential", cred),
            Parameter("Confirm", False),
        ),
        StepKind.CHANGE,
        "test",
        "set_send_connector_auth.ps1.j2",
    )
    plan = Plan("p", 2016, "C", (step,))
    if _has_unsafe(user):
        with pytest.raises(UnsafeValueError):
            render_script(plan)
        return
    script = render_script(plan)
    cred_lines = [line for line in script.splitlines() if line.startswith("$cred")]
    assert len(cred_lines) == 1
    match = CRED_LINE.fullmatch(cred_lines[0])
    assert match, cred_lines[0]
    assert decode(match.group(1)) == user
    parsed = check_line(cred_lines[0].split(" = ", 1)[1])
    assert parsed.cmdlet == "Get-Credential"
    assert decode(parsed.parameters[0][1][0]) == user
    command = [line for line in script.splitlines() if line.startswith("Set-SendConnector")]
    assert check_line(command[0]).parameters[1] == ("AuthenticationCredential", ["$cred"])


def test_the_ascii_fast_path_refuses_exactly_unicodes_control_characters() -> None:
    """ASCII text is checked by a regex, other text character by character: both give
    unicodedata's answer (category Cc) for every ASCII character, anywhere in the text."""
    for code in range(128):
        char = chr(code)
        expected = char if unicodedata.category(char) == "Cc" else None
        assert unsafe_character(f"Relay {char}x") == expected
        assert unsafe_character(f"Relé {char}x") == expected  # not ASCII: the slow path
