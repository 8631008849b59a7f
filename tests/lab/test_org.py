"""The organisation's state: the seeded scenario, the JSON state file (0600, atomic, survives
a restart, --reset), the lab addresses moving between runs, and thread safety."""

from __future__ import annotations

import copy as copy_module
import dataclasses
import json
import stat
import threading
import time
from pathlib import Path

import pytest

from remediate.core.errors import UsageError
from remediate.lab.api import LabCredential
from remediate.lab.model import AppEvent, StateFileError
from remediate.lab.org import Organization
from tests.lab.org_fixtures import ARCHIVE, INTERNET, PARTNER, RELAY, free_port, open_org


def test_the_seed_reproduces_both_events_on_both_servers_next_to_healthy_connectors(
    tmp_path: Path,
) -> None:
    """Queues per source transport server (exchange-notes.md, "Transport behaviour"); the 2016
    connector uses ExchangeServer, which needs no credential, so Set-SendConnector accepts it
    (rules 1-3 of "Rules Set-SendConnector enforces")."""
    org = open_org(None, 2525)
    relay, partner = org.connector(RELAY), org.connector(PARTNER)
    assert relay.smart_host_auth_mechanism == "ExchangeServer" and relay.credential is None
    assert relay.source_transport_servers == ["EX01", "EX02"]
    assert (relay.smart_hosts, relay.port) == (["localhost"], 2525)
    assert partner.port == org.closed_port != 2525
    assert org.connector(INTERNET).dns_routing_enabled
    archive = org.connector(ARCHIVE)
    assert archive.credential == LabCredential(org.relay_user, org.relay_password)
    assert {s.name for s in org.servers} == {"EX01", "EX02"}
    assert org.relay_user == "relay@contoso.lab"
    events = org.events
    assert [e.event_id for e in events] == [2016, 2002, 2016]
    assert [e.machine for e in events] == ["EX01.contoso.lab"] * 2 + ["EX02.contoso.lab"]
    assert all(isinstance(e, AppEvent) and e.source == "MSExchangeTransport" for e in events)
    assert events[1].fields == [PARTNER, f"127.0.0.1:{org.closed_port}"]
    assert events[2].fields[2::2] == ["ExchangeAuth", "EX02$"]
    retrying = {q.identity: q for q in org.queues() if q.status == "Retry"}
    assert {i: len(q.messages) for i, q in retrying.items()} == {
        "EX01\\4": 3,
        "EX01\\5": 2,
        "EX01\\7": 2,  # 2002 scenarios: smart host name does not resolve
        "EX01\\8": 2,  # 2002 scenarios: disabled connector
        "EX02\\12": 2,  # the 2016 connector's queue on its second source server
    }
    for identity in ("EX01\\4", "EX02\\12"):
        assert "{LED=451 5.7.3 Cannot achieve Exchange Server authentication}" in (
            retrying[identity].last_error
        )
    assert retrying["EX01\\5"].last_error.startswith("[{LRT=")  # the 2013+ wrapper
    assert "10061" in retrying["EX01\\5"].last_error


def test_each_seed_has_its_own_relay_password() -> None:
    assert open_org(None, 2525).relay_password != open_org(None, 2525).relay_password


def test_state_file_is_private_atomic_json(tmp_path: Path) -> None:
    state = tmp_path / "lab" / "state.json"
    org = open_org(state, 2525)
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    data = json.loads(state.read_text())
    assert data["version"] == 2 and data["relay"]["username"] == "relay@contoso.lab"
    org.replace_connector(_with_port(org, PARTNER, 2600))
    org.flush()
    assert sorted(p.name for p in state.parent.iterdir()) == ["state.json"]  # no temp files
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert json.loads(state.read_text())["connectors"]


def test_the_state_file_is_what_dataclasses_asdict_wrote(tmp_path: Path) -> None:
    """The cheaper save (issue 15: asdict deep-copied every connector per write, and the
    unchanged connectors were encoded again) writes the same JSON, keys in the same order, as
    the asdict-based save did; so older files load."""
    org = open_org(tmp_path / "state.json", 2525)
    state = org._state  # the live state: the file is written from it
    stamps = {"when_changed", "time_created", "not_before", "not_after"}
    stamps |= {"first_retry_time", "last_retry_time", "next_retry_time"}

    def old(obj) -> dict:
        data = dataclasses.asdict(obj)
        for name in stamps & data.keys():
            data[name] = data[name].isoformat() if data[name] else None
        return data

    def expected() -> dict:
        return {
            "version": 2,
            "domain": state.domain,
            "servers": [old(s) for s in state.servers],
            "connectors": [old(c) for c in state.connectors],
            "queues": [old(q) for q in state.queues],
            "events": [old(e) for e in state.events],
            "certificates": [old(c) for c in state.certificates],
            "relay": {"username": state.relay_user, "password": state.relay_password},
            "smart_host": {"host": state.smart_host[0], "port": state.smart_host[1]},
            "closed_port": state.closed_port,
        }

    assert any(c.credential for c in state.connectors) and any(q.messages for q in state.queues)
    assert any(q.next_retry_time for q in state.queues)
    written = (tmp_path / "state.json").read_text(encoding="utf-8")
    assert written == json.dumps(expected()) + "\n"
    org.replace_connector(_with_port(org, PARTNER, 2601))  # the others' texts are reused
    org.flush()
    written = (tmp_path / "state.json").read_text(encoding="utf-8")
    assert written == json.dumps(expected()) + "\n" and '"port": 2601' in written
    org.close()


def test_changes_are_saved_debounced_and_at_close(tmp_path: Path, monkeypatch) -> None:
    """Many changes, few writes of the whole file (issue 15: the lab rewrote and fsynced it
    per change); the last change is on disk within SAVE_DELAY, and at close at once."""
    from remediate.lab import org as org_module

    state = tmp_path / "state.json"
    org = open_org(state, 2525)
    writes: list[str] = []
    real_write = org_module._write_private
    monkeypatch.setattr(
        org_module, "_write_private", lambda p, t: (writes.append(t), real_write(p, t))
    )
    for port in range(3000, 3050):
        org.replace_connector(_with_port(org, PARTNER, port))
    assert len(writes) <= 1
    deadline = time.monotonic() + 10 * org_module.SAVE_DELAY
    while '"port": 3049' not in state.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert '"port": 3049' in state.read_text()  # the debounced write came
    assert 1 <= len(writes) <= 3
    org.replace_connector(_with_port(org, PARTNER, 3100))
    org.close()  # no wait: close writes at once
    assert '"port": 3100' in state.read_text()
    assert stat.S_IMODE(state.stat().st_mode) == 0o600


def _with_port(org: Organization, name: str, port: int):
    connector = org.connector(name)
    connector.port = port
    return connector


def test_state_survives_a_restart_and_reset_restores_the_seed(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first = open_org(state, 2525)
    first.replace_connector(_with_port(first, PARTNER, 2600))
    first.add_event(2002, "Warning", "SmtpSend", "a test event", ["x", "y"])
    first.close()

    second = open_org(state, 2525)
    assert second.connector(PARTNER).port == 2600
    assert second.events[-1].message == "a test event"
    assert second.relay_password == first.relay_password

    reset = open_org(state, 2525, reset=True)
    assert reset.connector(PARTNER).port == reset.closed_port
    assert len(reset.events) == 3
    assert reset.relay_password != first.relay_password


def test_connectors_follow_the_lab_smart_host_and_closed_port_between_runs(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first = open_org(state, 2525)
    first.replace_connector(_with_port(first, ARCHIVE, 2600))  # the admin's own setting
    first.close()
    moved_closed = free_port()
    second = Organization.open(
        state, reset=False, smart_host=("127.0.0.1", 2626), closed_port=moved_closed
    )
    assert second.connector(RELAY).port == 2626
    assert second.connector(PARTNER).port == moved_closed
    assert second.connector(ARCHIVE).port == 2600
    assert second.smart_host == ("127.0.0.1", 2626)


@pytest.mark.parametrize("content", ["{not json", '{"version": 99}', '{"version": 1}'])
def test_a_broken_state_file_is_one_clear_error(tmp_path: Path, content: str) -> None:
    state = tmp_path / "state.json"
    state.write_text(content)
    with pytest.raises(StateFileError) as caught:
        open_org(state, 2525)
    assert isinstance(caught.value, UsageError)
    assert "\n" not in str(caught.value) and "state" in str(caught.value)
    assert open_org(state, 2525, reset=True).connector(RELAY)  # --reset recovers


def test_lookups_and_copies(tmp_path: Path) -> None:
    org = open_org(None, 2525)
    guid = org.connector(RELAY).guid
    assert org.find_connector(guid.upper()).name == RELAY
    assert org.find_connector(f"EX02\\{RELAY.lower()}").name == RELAY
    assert org.find_connector(f"EX02\\{PARTNER}") is None  # not a source server of Partner
    assert org.find_connector("nope") is None
    with pytest.raises(KeyError):
        org.connector("nope")
    copy = org.connector(RELAY)
    copy.port = 1
    assert org.connector(RELAY).port == 2525  # callers get copies, never live objects


def test_a_connector_copy_is_as_independent_as_a_deep_copy() -> None:
    """Connector.copy (issue 15: deepcopy on every read and change) equals copy.deepcopy and
    shares nothing mutable with the original."""
    for connector in open_org(None, 2525).connectors():
        copied, deep = connector.copy(), copy_module.deepcopy(connector)
        assert copied == deep == connector
        for field in dataclasses.fields(connector):
            value = getattr(connector, field.name)
            if isinstance(value, list | LabCredential):
                assert getattr(copied, field.name) is not value, field.name
        if connector.credential is not None:
            copied.credential.password = "changed"
            assert connector.credential.password != "changed"
        copied.smart_hosts.append("changed.example")
        assert "changed.example" not in connector.smart_hosts


def test_a_certificate_copy_is_as_independent_as_a_deep_copy() -> None:
    certificates = open_org(None, 2525).certificates()
    assert certificates
    for certificate in certificates:
        copied = certificate.copy()
        assert copied == copy_module.deepcopy(certificate) == certificate
        copied.certificate_domains.append("changed.example")
        assert "changed.example" not in certificate.certificate_domains


def test_concurrent_changes_keep_a_valid_state_file(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    org = open_org(state, 2525)
    names = [RELAY, PARTNER, ARCHIVE, INTERNET]

    def change(index: int) -> None:
        for round_ in range(5):
            org.replace_connector(_with_port(org, names[index % 4], 3000 + index * 10 + round_))
            org.add_event(2002, "Warning", "SmtpSend", f"event {index}-{round_}", [])

    threads = [threading.Thread(target=change, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    org.close()
    reloaded = open_org(state, 2525)
    assert len(reloaded.events) == 3 + 8 * 5
    assert len({e.record_id for e in reloaded.events}) == 3 + 8 * 5
    assert all(reloaded.connector(n).port >= 3000 for n in names)
