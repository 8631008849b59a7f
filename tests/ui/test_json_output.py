"""--json of the offline commands (plan, playbooks, connect list, diagnose, a refused run),
run through the installed executable and validated against the shipped JSON Schemas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from remediate.core.exchange import QueueInfo
from remediate.core.queuejson import queue_json
from remediate.ui.jsonout import SCHEMAS, schema
from tests.schema_check import checked

EXE = Path(sys.executable).with_name("remediate")
FIXTURES = Path(__file__).parent.parent / "fixtures" / "events"


def run(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    return subprocess.run(
        [str(EXE), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.schema.json")), ids=lambda p: p.name)
def test_every_shipped_schema_is_a_valid_schema(path: Path) -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.e2e
def test_playbooks_json(tmp_path: Path) -> None:
    done = run("playbooks", "--json", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    books = checked("playbooks", done.stdout)
    assert {(b["event"], b["id"]) for b in books} == {
        (2016, "smarthost-auth-credential"),
        (2002, "send-connection-error"),
    }


@pytest.mark.e2e
def test_plan_json_is_the_plan_and_the_file_still_gets_the_script(tmp_path: Path) -> None:
    target = tmp_path / "fix.ps1"
    done = run(
        "plan", "2016", "--connector", "发送到中继", "--mechanism", "BasicAuthRequireTLS",
        "--username", "relay@contoso.com", "--smart-host", "smtp.relay.example", "--port", "587",
        "--output", str(target), "--json", tmp_path=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    plan = checked("plan", done.stdout)
    assert plan["connector"] == "发送到中继" and plan["output"] == str(target)
    changes = [s for s in plan["steps"] if s["kind"] == "change"]
    sets = {p["name"]: p for s in changes for p in s["parameters"]}
    assert sets["AuthenticationCredential"]["type"] == "credential"
    assert sets["AuthenticationCredential"]["username"] == "relay@contoso.com"
    assert sets["Port"] == {"name": "Port", "type": "plain", "value": 587}
    assert target.read_bytes().startswith(b"\xef\xbb\xbf")
    assert f"wrote {target}" in done.stderr


@pytest.mark.e2e
def test_plan_json_without_output_prints_no_script(tmp_path: Path) -> None:
    done = run("plan", "2002", "--connector", "X", "--port", "25", "--json", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert checked("plan", done.stdout)["output"] is None
    assert "Set-SendConnector -Identity" not in done.stdout


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("plan", "2003", "--connector", "X", "--json"), 2),
        (("plan", "2016", "--connector", "X", "--port", "70000", "--json"), 2),
        (("diagnose", "--json", "missing.xml"), 2),
        (("undo", "missing.json", "--json"), 2),
    ],
)
@pytest.mark.e2e
def test_a_refused_run_prints_the_error_document_with_the_same_status(
    tmp_path: Path, args: tuple[str, ...], code: int
) -> None:
    plain = run(*[a for a in args if a != "--json"], tmp_path=tmp_path)
    done = run(*args, tmp_path=tmp_path)
    assert done.returncode == plain.returncode == code
    error = checked("error", done.stdout)
    assert error["exit_code"] == code
    assert done.stderr.startswith(f"remediate: error: {error['error']}")


@pytest.mark.e2e
def test_diagnose_json_matches_its_schema_and_a_failing_input_prints_one_document(
    tmp_path: Path,
) -> None:
    done = run("diagnose", "--json", str(FIXTURES / "export.xml"), tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert checked("diagnose", done.stdout)["events"]
    empty = tmp_path / "none.txt"
    empty.write_text("nothing to see here\n", encoding="utf-8")
    done = run("diagnose", "--json", str(empty), tmp_path=tmp_path)
    assert done.returncode == 1
    assert checked("diagnose", done.stdout)["events"] == []  # one document, not two


@pytest.mark.e2e
def test_connect_list_json(tmp_path: Path) -> None:
    assert checked("connect-list", run("connect", "list", "--json", tmp_path=tmp_path).stdout) == []
    added = run(
        "connect", "add", "ex01", "--server", "https://ex01.contoso.com/powershell",
        "--auth", "ntlm", "--user", "CONTOSO\\admin", tmp_path=tmp_path,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    done = run("connect", "list", "--json", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    [profile] = checked("connect-list", done.stdout)
    assert profile["profile"] == "ex01" and profile["username"] == "CONTOSO\\admin"
    assert profile["server"] == "ex01.contoso.com" and profile["auth"] == "ntlm"


def test_the_schemas_are_in_the_package_data() -> None:
    """Shipped inside the package directory, so the wheel carries them (test_wheel builds it)."""
    names = {p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.schema.json")}
    assert names == {
        "plan", "change-run", "bulk-plan", "bulk-report", "connect-list", "playbooks", "error",
        "show", "diagnose", "queue",
    }  # fmt: skip
    assert schema("error")["title"] == "remediate error"


# LastError as Exchange 2013+ writes it (shared/exchange-notes.md, "Queues"): the wrapper
# around the smart host's reply
WRAPPED = (
    "[{LRT=11/20/2026 9:30:00 AM};{LED=451 5.7.3 Cannot achieve Exchange Server "
    "authentication};{FQDN=relay.contoso.lab};{IP=192.0.2.10}]"
)


@pytest.mark.parametrize("last_error", [WRAPPED, None])
def test_a_queue_has_one_shape_with_the_cause_read_in_last_error(last_error: str | None) -> None:
    queue = QueueInfo(
        "EX02\\12", "relay.contoso.lab", "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b", "Retry", 2,
        last_error,
    )  # fmt: skip
    data = checked("queue", json.dumps(queue_json(queue)))
    assert (data["identity"], data["server"], data["message_count"]) == ("EX02\\12", "EX02", 2)
    if last_error is None:
        assert data["cause"] is data["explanation"] is data["action"] is None
    else:
        assert data["cause"] == "exchange-auth" and data["last_error"] == WRAPPED
        assert "ExchangeServer authentication" in data["explanation"]


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("show", ("items", "properties", "queues", "items")),
        ("diagnose", ("properties", "queues", "anyOf", 1, "properties", "queues", "items")),
        ("change-run", ("properties", "queues", "anyOf", 1, "properties", "queues", "items")),
    ],
)
def test_every_queue_list_refers_to_the_one_queue_schema(
    name: str, path: tuple[str | int, ...]
) -> None:
    node: object = schema(name)
    for part in path:
        node = node[part]  # type: ignore[index]
    assert node == {"$ref": "queue.schema.json"}
