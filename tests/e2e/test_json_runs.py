"""apply and undo with --json through the installed executable against the lab over real
HTTP: stdout is one document valid against the shipped schema (change-run), the human lines
are on stderr, and the exit status is the one the plain run has."""

from __future__ import annotations

import pytest

from remediate.lab.server import Lab
from tests.e2e.conftest import PROFILE, RELAY, Cli
from tests.schema_check import checked

pytestmark = [pytest.mark.e2e, pytest.mark.keyring]


def fix_2016(lab: Lab, *extra: str) -> list[str]:
    return [
        "apply", "2016", "--profile", PROFILE, "--connector", RELAY,
        "--mechanism", "BasicAuthRequireTLS", "--username", lab.relay_user, *extra,
    ]  # fmt: skip


def test_apply_then_undo_json(profiled: Cli, relay_lab: Lab) -> None:
    done = profiled(*fix_2016(relay_lab, "--yes", "--json"))
    assert done.returncode == 0, done.stderr
    run = checked("change-run", done.stdout)
    assert (run["command"], run["result"], run["ok"]) == ("apply", "applied", True)
    assert run["before"]["AuthenticationCredential"] == "not set"
    assert run["after"]["AuthenticationCredential"] == "set"
    assert run["after"]["SmartHostAuthMechanism"] == "BasicAuthRequireTLS"
    assert {s["status"] for s in run["steps"]} == {"ok"}
    assert [str(p) for p in profiled.backups()] == [run["backup"]]
    assert run["queues"]["flow"] == "flows"
    assert {q["server"] for q in run["queues"]["queues"]} == {"EX01", "EX02"}
    assert "[4/9] Set-SendConnector: ok" in done.stderr  # the human lines moved to stderr
    assert relay_lab.relay_password not in done.stdout + done.stderr

    again = profiled(*fix_2016(relay_lab, "--yes", "--json"))
    assert again.returncode == 0, again.stderr
    assert checked("change-run", again.stdout)["result"] == "no change"

    undone = profiled("undo", run["backup"], "--profile", PROFILE, "--yes", "--json")
    assert undone.returncode == 0, undone.stderr
    undo = checked("change-run", undone.stdout)
    assert (undo["command"], undo["result"]) == ("undo", "applied")
    assert undo["after"]["SmartHostAuthMechanism"] == run["before"]["SmartHostAuthMechanism"]

    target = profiled.state_dir / "undo.ps1"
    script = profiled("undo", run["backup"], "--output", str(target), "--json")
    assert script.returncode == 0, script.stderr
    assert checked("plan", script.stdout)["output"] == str(target)


def test_apply_json_refused_keeps_its_status(profiled: Cli, relay_lab: Lab) -> None:
    """Not confirmed without a terminal: status 2 both ways, the error document on stdout."""
    plain = profiled(*fix_2016(relay_lab))
    done = profiled(*fix_2016(relay_lab, "--json"))
    assert done.returncode == plain.returncode == 2
    assert checked("error", done.stdout)["error"].startswith("not confirmed")
    assert profiled.backups() == []


def test_show_json_matches_its_schema(profiled: Cli) -> None:
    done = profiled("show", "--profile", PROFILE, "--queues", "--json")
    assert done.returncode == 0, done.stderr
    names = {c["Name"] for c in checked("show", done.stdout)}
    assert RELAY in names
