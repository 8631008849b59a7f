"""Playbook loading and validation: the shipped playbooks, and broken ones named by field."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from remediate.core.errors import PlaybookError, UsageError
from remediate.core.playbooks import (
    CHECK_NAMES,
    INPUT_TYPES,
    RESERVED,
    Condition,
    Input,
    find,
    load_all,
    load_file,
    user_dir,
)
from remediate.core.resources import playbooks_dir
from remediate.diagnose.eventmatch import Template
from remediate.diagnose.events import parser


def test_shipped_playbooks() -> None:
    books = load_all()
    assert [b.event.id for b in books] == [2002, 2016]
    by_event = {b.event.id: b for b in books}
    auth = by_event[2016]
    assert "%2" in auth.event.message and auth.event.source == "MSExchangeTransport"
    assert {a.id for a in auth.actions} == {
        "common-mechanism",
        "reenter-credential",
        "check-reachability",
    }
    assert {
        "mechanism",
        "username",
        "smart_hosts",
        "port",
        "require_tls",
        "tls_auth_level",
        "tls_domain",
    } <= auth.input_names
    conn = by_event[2002]
    assert conn.event.symbolic_name == "SmtpSendConnectionError"
    assert conn.input_names == {"smart_hosts", "port", "enable", "protocol_logging"}
    for book in books:
        assert book.verify[0].template == "get_send_connector"
        assert book.purpose and "\n" not in book.purpose


@pytest.mark.parametrize(
    "name", ["2016", "smarthost-auth-credential", " SMARTHOST-auth-credential "]
)
def test_find_by_event_or_id(name: str) -> None:
    assert find(name).event.id == 2016


def test_find_unknown_lists_known() -> None:
    with pytest.raises(UsageError, match=r"2002 .*2016"):
        find("2003")


def _broken(tmp_path: Path, mutate) -> PlaybookError:
    data = yaml.safe_load((playbooks_dir() / "2016-credential-initialization.yaml").read_text())
    mutate(data)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PlaybookError) as info:
        load_file(path)
    assert re.match(r"\S*broken\.yaml:\d+: ", str(info.value))  # FILE:LINE: field: problem
    return info.value


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("id"), "id"),
        (lambda d: d["event"].update(id="2016"), "event.id"),
        (lambda d: d["event"].pop("message"), "event.message"),
        (lambda d: d["actions"][1].update(text=""), "actions[1].text"),
        (lambda d: d["inputs"][0].update(name="password"), "inputs[0].name"),
        (lambda d: d["inputs"][3].update(type="port"), "inputs[3].type"),
        (lambda d: d["fixes"][1].update(template="set_send_connector_nope"), "fixes[1].template"),
        (lambda d: d["reads"][0].update(template="set_send_connector_auth"), "reads[0].template"),
        (lambda d: d["verify"][2].update(action="pray"), "verify[2].action"),
        (lambda d: d.update(fixes=[]), "fixes"),
        (lambda d: d["fixes"].append(copy.deepcopy(d["fixes"][0])), "fixes"),
    ],
)
def test_broken_playbook_names_file_and_field(tmp_path: Path, mutate, field: str) -> None:
    err = _broken(tmp_path, mutate)
    assert str(err).split(": ")[1] == field
    assert "\n" not in str(err)


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: x\nactions: [\n")
    with pytest.raises(PlaybookError, match=r"bad.yaml:3: is not valid YAML \("):
        load_file(path)


def test_duplicate_event_is_refused(tmp_path: Path) -> None:
    source = playbooks_dir() / "2002-connection-error.yaml"
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(source.read_text())
    with pytest.raises(PlaybookError, match=r"b\.yaml:1: id: .* also used by \S*a\.yaml"):
        load_all(tmp_path)


def test_input_types_cover_every_fix_option() -> None:
    from dataclasses import fields

    from remediate.core.options import FixOptions

    assert set(INPUT_TYPES) == {f.name for f in fields(FixOptions)} - {"connector", "extra"}


# --- playbooks as data (issue 14) ------------------------------------------------------------

OWN = Path(__file__).resolve().parents[1] / "fixtures" / "playbooks"
OWN = OWN / "12014-starttls-certificate.yaml"


def test_the_shipped_parsers_are_the_hand_written_templates_they_replace() -> None:
    """The 2016 and 2002 message parsers compiled from the YAML are the templates events.py
    held as code before (same literals, fields, limits and end rule)."""
    by_event = {b.event.id: parser(b.event.pattern) for b in load_all() if b.event.pattern}
    assert by_event[2016] == Template(
        (
            "An authentication credential initialization error ",
            "status",
            " occurred with Send connector ",
            "connector",
            ". The authentication mechanism used was ",
            "mechanism",
            ". The name of the server that we were trying to authenticate to was ",
            "target_server",
            ". This server was using the name ",
            "user",
        ),
        last_ends_at_sentence=True,
        limits={"connector": 256},
        forbid={"connector": "Send connector "},
    )
    assert by_event[2002] == Template(
        (
            "Send connector ",
            "connector",
            ": an error occurred while connecting to ",
            "remote_endpoint",
        ),
        last_ends_at_sentence=False,
        limits={"connector": 256},
        forbid={"connector": "Send connector "},
    )


def test_fixes_say_which_input_sets_which_parameter() -> None:
    auth = find("2016")
    assert [f.sets for f in auth.fixes] == [
        (("SmartHosts", "smart_hosts"), ("Port", "port")),
        (("SmartHostAuthMechanism", "mechanism"), ("AuthenticationCredential", "username")),
        (
            ("RequireTLS", "require_tls"),
            ("TlsAuthLevel", "tls_auth_level"),
            ("TlsDomain", "tls_domain"),
        ),
    ]
    assert auth.flow == "flow_2016" and auth.checks[:2] == ("event-hints", "configuration")


def test_every_check_a_playbook_may_name_is_implemented() -> None:
    from remediate.diagnose.playbook_checks import CHECKS

    assert set(CHECKS) == CHECK_NAMES
    for book in load_all():
        assert set(book.checks) <= CHECK_NAMES


class _CountingText(str):
    """A text that counts the scans (``str.find``) the parser makes over it."""

    finds = 0

    def find(self, *args: object) -> int:  # type: ignore[override]
        _CountingText.finds += 1
        return super().find(*args)  # type: ignore[arg-type]


def _scans(template: Template, text: str) -> tuple[int, int]:
    _CountingText.finds = 0
    found = list(template.finditer(_CountingText(text)))
    return _CountingText.finds, len(found)


@pytest.mark.parametrize(
    "prefix",
    [
        # the admin's 12014 message started over and over, never reaching "with a FQDN"
        "Microsoft Exchange could not find a certificate that contains the domain name x in the "
        "personal store on the local computer. Therefore, it is unable to support the STARTTLS "
        "SMTP verb for the connector y ",
        # 2016 prefixes (the input that took 53 s with the lazy regex)
        "An authentication credential initialization error x occurred with Send connector y. ",
    ],
    ids=["12014", "2016"],
)
def test_a_compiled_parser_scans_hostile_text_in_linear_time(tmp_path: Path, prefix: str) -> None:
    """Every literal is found once per occurrence (str.find forward, no regex built from the
    message), so 4x the text costs 4x the scans: counted, not timed."""
    book = load_file(OWN) if prefix.startswith("Microsoft") else find("2016")
    assert book.event.pattern is not None
    scanner = parser(book.event.pattern)
    small, small_found = _scans(scanner, prefix * 500)
    large, large_found = _scans(scanner, prefix * 2000)
    assert small_found == large_found == 0
    assert large <= 4 * small + 8  # linear; a backtracking scan would be ~16x
    literals = len(scanner.parts[0::2])
    assert large <= literals * (2000 + 1)  # at most one scan per literal and occurrence


def test_an_own_playbook_parses_its_event(tmp_path: Path, monkeypatch) -> None:
    from remediate.diagnose.events import parse_text

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    user_dir().mkdir(parents=True)
    (user_dir() / OWN.name).write_text(OWN.read_text())
    text = (
        "Microsoft Exchange could not find a certificate that contains the domain name "
        "relay.contoso.lab in the personal store on the local computer. Therefore, it is unable "
        "to support the STARTTLS SMTP verb for the connector Outbound to Relay with a FQDN "
        "parameter of relay.contoso.lab. If the connector's FQDN is not specified, ..."
    )
    [record] = parse_text(text)
    assert record.ok and record.event_id == 12014
    assert record.playbook == "starttls-certificate-fqdn"
    assert record.connector == "Outbound to Relay"
    assert record.fields["announced_fqdn"] == "relay.contoso.lab"
    [other] = parse_text("Send connector X: an error occurred while connecting to 10.0.0.1:25.")
    assert other.ok and other.playbook == "send-connection-error"
    [none] = parse_text("nothing here")
    assert none.problems == ["no event 12014, 2016 or 2002 message found in this text"]


def _own_broken(tmp_path: Path, old: str, new: str, at: str) -> tuple[str, int]:
    """The error of the 12014 playbook with ``old`` replaced, and the line holding ``at``."""
    text = OWN.read_text()
    assert old in text
    path = tmp_path / "mine.yaml"
    path.write_text(text.replace(old, new, 1))
    line = next(n for n, t in enumerate(path.read_text().splitlines(), 1) if at in t)
    with pytest.raises(PlaybookError) as info:
        load_file(path)
    return str(info.value), line


# (replace, with, the problem reported, the text on the line it names)
BROKEN_OWN = [
    ("Fqdn: fqdn", "Fqdn: fqdm", "fixes[0].sets.Fqdn: 'fqdm' is not one of the", "Fqdn: fqdm"),
    ("Fqdn: fqdn", "Password: fqdn", "fixes[0].sets.Password: 'Password' is not a", "Password"),
    (
        "template: set_send_connector\n",
        "template: set_send_connector_state\n",
        "fixes[0].sets.Fqdn: ps_templates/set_send_connector_state.ps1.j2 does not take Fqdn",
        "Fqdn: fqdn",
    ),
    ("of %3.", "of %3 %4.", "event.message: %4 has no named entry", "message: >-"),
    ("name %1 in", "name %1%3 in", "event.message: must start with text", "message: >-"),
    ("{name: connector,", "{name: relay,", "event.fields: one field must be named", "fields:"),
    ("  - certificate\n", "  - horoscope\n", "checks[2]: unknown check 'horoscope'", "horoscope"),
    ("id: starttls", "flow: flow_nope\nid: starttls", "flow: 'flow_nope' is not one", "flow:"),
    ("type: domain", "type: choice", "inputs[0].choices: a choice input needs", "- name: fqdn"),
    ("type: domain", "type: domain\n    when: port", "inputs[0].when: 'port' is not", "when:"),
    ("- name: fqdn", "- name: relay_password", "inputs[0].name: unknown input", "relay_password"),
    ("- name: fqdn", "- name: action", "inputs[0].name: unknown input 'action'", "- name: action"),
]


@pytest.mark.parametrize(("old", "new", "problem", "at"), BROKEN_OWN)
def test_an_own_playbook_error_is_file_line_field(
    tmp_path: Path, old: str, new: str, problem: str, at: str
) -> None:
    message, line = _own_broken(tmp_path, old, new, at)
    assert "\n" not in message
    head, _, rest = message.partition(": ")
    assert head == f"{tmp_path / 'mine.yaml'}:{line}" and rest.startswith(problem), message


def test_own_playbooks_load_from_the_config_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    mine = user_dir()
    assert mine == tmp_path / "remediate" / "playbooks"
    mine.mkdir(parents=True)
    (mine / OWN.name).write_text(OWN.read_text())
    assert [b.event.id for b in load_all()] == [2002, 2016, 12014]
    assert find("12014").source == mine / OWN.name
    (mine / "again.yaml").write_text(
        OWN.read_text().replace("id: 12014", "id: 2016").replace("id: starttls", "id: x")
    )
    with pytest.raises(PlaybookError, match=r"again\.yaml:1: id: '2016' is also used by 2016-"):
        load_all()


@pytest.mark.parametrize(
    ("kind", "raw", "value"),
    [
        ("domain", "Mail.Contoso.Lab", "Mail.Contoso.Lab"),
        ("host", "10.0.0.5", "10.0.0.5"),
        ("hosts", "a.example, b.example", ("a.example", "b.example")),
        ("port", "587", 587),
        ("int", "3", 3),
        ("bool", "yes", True),
        ("text", "  Relay  ", "Relay"),
    ],
)
def test_own_inputs_are_typed(kind: str, raw: str, value: object) -> None:
    from remediate.core.options import parse_input

    assert parse_input(Input(name="x", type=kind, help="x"), raw) == value


@pytest.mark.parametrize(
    ("item", "raw", "problem"),
    [
        (Input(name="fqdn", type="domain", help="FQDN"), "10.0.0.5", "--fqdn: '10.0.0.5' is an IP"),
        (
            Input(name="port2", type="port", help="p"),
            "70000",
            "--port2: '70000' is not a number 0-65535",
        ),
        (
            Input(name="n", type="int", help="n", minimum=1, maximum=5),
            "9",
            "--n: '9' is not a number 1-5",
        ),
        (
            Input(name="c", type="choice", help="c", choices=("A", "B")),
            "z",
            "--c: 'z' is not one of: A, B",
        ),
        (
            Input(name="t", type="text", help="note"),
            "a\x1bb",
            "--t: contains the control character",
        ),
    ],
)
def test_own_inputs_refuse_bad_values(item: Input, raw: str, problem: str) -> None:
    from remediate.core.options import parse_input

    with pytest.raises(UsageError) as info:
        parse_input(item, raw)
    assert info.value.message.startswith(problem)


def test_when_asks_only_when_the_condition_holds() -> None:
    given, equals = Condition("enable"), Condition("mechanism", "==", "BasicAuth")
    assert given.holds({"enable": True}) and not given.holds({"enable": False})
    assert equals.holds({"mechanism": "basicauth"}) and not equals.holds({"mechanism": "None"})
    assert Condition("mechanism", "!=", "None").holds({"mechanism": "BasicAuth"})


def test_the_readme_example_is_a_valid_playbook(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Writing your own playbook", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "12014.yaml"
    path.write_text(example)
    book = load_file(path)
    assert book.event.id == 12014 and [f.sets for f in book.fixes] == [(("Fqdn", "fqdn"),)]


def test_reserved_input_names_cover_the_wizards_own_answers() -> None:
    from remediate.core.answers import KEYS

    assert set(KEYS) - set(INPUT_TYPES) - {"username", "port", "mechanism"} <= RESERVED


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: &x [1, 2]\nb: *x\n", "mine.yaml:2: the alias *x is not accepted"),
        ("id: one\ntitle: t\nid: two\n", "mine.yaml:3: id: given twice (first on line 1)"),
        ("event:\n  id: 1\n  id: 2\n", "mine.yaml:3: event: id: given twice"),
        ("id: [x\n", "mine.yaml:2: is not valid YAML ("),
    ],
)
def test_yaml_that_explodes_or_hides_a_value_is_refused(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(PlaybookError) as info:
        load_file(path)
    assert str(info.value).startswith(f"{tmp_path}/{problem}")


def test_a_huge_playbook_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("# " + "x" * (256 * 1024) + "\n")
    with pytest.raises(PlaybookError, match=r"huge\.yaml:1: larger than 256 KiB; not read"):
        load_file(path)
