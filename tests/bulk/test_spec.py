"""The bulk input file: YAML and CSV rows, validated entirely, every problem with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from remediate.bulk.spec import SpecError, load
from remediate.core.errors import UsageError
from remediate.core.exchange import AuthMechanism, SendConnector
from remediate.remote.connections import AuthMethod, Connection, ProfileStore

URL = "http://127.0.0.1:5985/PowerShell"


@pytest.fixture
def profiles(tmp_path: Path) -> ProfileStore:
    store = ProfileStore(tmp_path / "profiles.json")
    store.save(Connection(server="ex01.contoso.com", port=80, profile="ex01"))
    return store


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, profiles: ProfileStore) -> list[tuple[int, str]]:
    with pytest.raises(SpecError) as caught:
        load(path, profiles)
    assert caught.value.exit_code == 2
    return [(p.line, p.message) for p in caught.value.problems]


def test_yaml_rows_with_defaults_profile_and_url(tmp_path: Path, profiles: ProfileStore) -> None:
    path = write(
        tmp_path,
        "fix.yaml",
        f"""\
defaults:
  mechanism: BasicAuthRequireTLS
  credential_user: relay@contoso.com
connectors:
  - endpoint: ex01
    connector: Outbound to Relay
  - endpoint: {URL}
    auth: basic
    user: admin
    smart_host_match: "*.relay.contoso.com"
    credential_key: shared-relay
    smart_hosts: [a.relay.contoso.com, b.relay.contoso.com]
    port: 587
""",
    )
    spec = load(path, profiles)
    first, second = spec.rows
    assert (first.line, second.line) == (5, 7)
    assert first.endpoint.profile == "ex01"
    assert first.options == {
        "mechanism": AuthMechanism.BASIC_AUTH_REQUIRE_TLS,
        "username": "relay@contoso.com",
    }
    assert first.playbook.event.id == 2016
    assert second.endpoint.url == URL and second.endpoint.auth is AuthMethod.BASIC
    assert second.options["smart_hosts"] == ("a.relay.contoso.com", "b.relay.contoso.com")
    assert second.credential_ref("relay@contoso.com").key == "shared-relay"
    assert first.credential_ref("relay@contoso.com").key == "relay@contoso.com"


def test_playbook_chosen_by_settings_or_named(tmp_path: Path, profiles: ProfileStore) -> None:
    path = write(
        tmp_path,
        "fix.csv",
        "endpoint,connector,enabled,port,playbook\nex01,A,yes,,\nex01,B,,587,2002\nex01,C,,587,\n",
    )
    enable, port_2002, port_default = load(path, profiles).rows
    assert enable.options == {"enable": True} and enable.playbook.event.id == 2002
    assert port_2002.playbook.event.id == 2002
    assert port_default.playbook.event.id == 2002  # the first playbook taking them all


def test_selectors_match_name_guid_and_smart_host_pattern(
    tmp_path: Path, profiles: ProfileStore
) -> None:
    path = write(
        tmp_path,
        "fix.csv",
        "endpoint,connector,smart_host_match,port\n"
        "ex01,OUTBOUND TO RELAY,,587\n"
        "ex01,9b6c4f0e-0000-4000-8000-000000000001,,587\n"
        "ex01,,*.relay.contoso.com,587\n",
    )
    by_name, by_guid, by_pattern = load(path, profiles).rows
    connector = SendConnector(
        "Outbound to Relay",
        guid="9B6C4F0E-0000-4000-8000-000000000001",
        smart_hosts=("smtp.relay.contoso.com",),
        dns_routing_enabled=False,
    )
    other = SendConnector("Internet Mail", guid="x", smart_hosts=("smtp.fabrikam.example",))
    assert by_name.selects(connector) and not by_name.selects(other)
    assert by_guid.selects(connector) and not by_guid.selects(other)
    assert by_pattern.selects(connector) and not by_pattern.selects(other)
    assert [r.line for r in (by_name, by_guid, by_pattern)] == [2, 3, 4]


def test_every_yaml_problem_is_listed_with_its_line(tmp_path: Path, profiles: ProfileStore) -> None:
    path = write(
        tmp_path,
        "bad.yaml",
        f"""\
connectors:
  - endpoint: ex01
    connector: Outbound to Relay
    port: 99999
  - endpoint: nowhere
    connector: A
    port: 25
  - endpoint: ex01
    connector: B
    mechanism: BasicAuth
    enabled: true
  - endpoint: {URL}
    auth: basic
    connector: C
    smart_hosts: [bad host]
    colour: red
  - endpoint: ex01
    port: 25
  - endpoint: ex01
    connector: "Outbound to Relay"
    credential_user: "relay\\tuser"
  - endpoint: ex01
    connector: D
""",
    )
    problems = problems_of(path, profiles)
    lines = [line for line, _ in problems]
    assert lines == sorted(lines)
    text = {line: message for line, message in problems}
    assert "port: 99999 is not a port number" in text[4]
    assert "no connection profile named 'nowhere'" in text[5]
    assert "different playbooks" in text[8]
    assert "auth basic: give user too" in text[13]
    assert text[15].startswith("smart_hosts: 'bad host' is not a host name")
    assert text[16].startswith("unknown key 'colour'")
    assert "exactly one of connector" in text[17]
    assert "control character U+0009" in text[21]
    assert "no setting to apply" in text[22]


def test_csv_problems_and_duplicate_connector(tmp_path: Path, profiles: ProfileStore) -> None:
    path = write(
        tmp_path,
        "bad.csv",
        "endpoint,connector,mechanism,credential_user,require_tls\n"
        "ex01,A,BasicAuth,relay,true\n"
        "ex01,a,BasicAuth,relay,true\n"
        "ex01,B,Foo,relay,maybe\n"
        "ex01,C,BasicAuth,relay,true,extra\n",
    )
    problems = problems_of(path, profiles)
    assert problems[0] == (3, "connector 'a' is already on line 2")
    assert (
        4,
        "mechanism: 'Foo' is not one of None, BasicAuth, BasicAuthRequireTLS, "
        "ExchangeServer, ExternalAuthoritative",
    ) in problems
    assert (4, "require_tls: 'maybe' is not true or false") in problems
    assert (5, "6 cells but 5 columns") in problems


def test_broken_yaml_names_its_line(tmp_path: Path, profiles: ProfileStore) -> None:
    path = write(tmp_path, "broken.yaml", "connectors:\n  - endpoint: ex01\n   connector: [A\n")
    [(line, message)] = problems_of(path, profiles)
    assert line == 3 and message.startswith("not YAML")


def test_empty_file_and_wrong_suffix(tmp_path: Path, profiles: ProfileStore) -> None:
    assert problems_of(write(tmp_path, "empty.yaml", ""), profiles) == [
        (1, "no rows: the file names no connector")
    ]
    with pytest.raises(UsageError, match=r"give a \.yaml, \.yml or \.csv file"):
        load(write(tmp_path, "fix.txt", "x"), profiles)
    with pytest.raises(UsageError, match="cannot read the file"):
        load(tmp_path / "missing.yaml", profiles)


def test_a_password_in_the_file_is_refused_without_repeating_it(
    tmp_path: Path, profiles: ProfileStore
) -> None:
    path = write(
        tmp_path,
        "secret.yaml",
        "- endpoint: ex01\n  connector: A\n  credential_user: relay\n  password: Hunter2-x\n",
    )
    [(line, message)] = problems_of(path, profiles)
    assert line == 4 and message.startswith("password: passwords are never in the file")
    assert "Hunter2-x" not in message


def test_credential_key_needs_a_credential_user(tmp_path: Path, profiles: ProfileStore) -> None:
    path = write(
        tmp_path,
        "key.yaml",
        "- endpoint: ex01\n  connector: A\n  port: 587\n  credential_key: rotated\n",
    )
    assert problems_of(path, profiles) == [(4, "credential_key: give credential_user too")]


def test_rows_carry_auth_and_the_spn_override(tmp_path: Path, profiles: ProfileStore) -> None:
    path = write(
        tmp_path,
        "krb.yaml",
        f"""\
- endpoint: {URL}
  auth: kerberos
  spn_host: ex01.contoso.com
  connector: Outbound to Relay
  port: 587
- endpoint: {URL.replace("5985", "5986")}
  auth: negotiate
  spn_host: "bad name/x"
  connector: Outbound to Relay
  port: 587
- endpoint: ex01
  spn_host: ex01.contoso.com
  connector: Outbound to Archive
  port: 587
""",
    )
    problems = problems_of(path, profiles)
    assert (8, "spn_host 'bad name/x': give a host name such as ex01.contoso.com") in problems
    assert any(line == 11 and "only with a URL" in text for line, text in problems)
    path.write_text("\n".join(path.read_text().splitlines()[:5]) + "\n")
    [row] = load(path, profiles).rows
    assert row.endpoint.auth is AuthMethod.KERBEROS and row.endpoint.username is None
    assert row.endpoint.spn_host == "ex01.contoso.com"
