"""Playbook loading and validation: the shipped playbooks, and broken ones named by field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from remediate.core.errors import PlaybookError, UsageError
from remediate.core.playbooks import INPUT_TYPES, find, load_all, load_file
from remediate.core.resources import playbooks_dir


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
    assert str(info.value).startswith("broken.yaml: ")
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
        (lambda d: d["fixes"].append(dict(d["fixes"][0])), "fixes"),
    ],
)
def test_broken_playbook_names_file_and_field(tmp_path: Path, mutate, field: str) -> None:
    err = _broken(tmp_path, mutate)
    assert str(err).split(": ")[1] == field


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: x\nactions: [\n")
    with pytest.raises(PlaybookError, match=r"bad.yaml: is not valid YAML \(line \d+\)"):
        load_file(path)


def test_duplicate_event_is_refused(tmp_path: Path) -> None:
    source = playbooks_dir() / "2002-connection-error.yaml"
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(source.read_text())
    with pytest.raises(PlaybookError, match=r"b\.yaml: id: .* also used by a\.yaml"):
        load_all(tmp_path)


def test_input_types_cover_every_fix_option() -> None:
    from dataclasses import fields

    from remediate.core.planner import FixOptions

    assert set(INPUT_TYPES) == {f.name for f in fields(FixOptions)} - {"connector"}
