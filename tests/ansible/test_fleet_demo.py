"""README's one-command fleet run: ``bash scripts/fleet-demo.sh`` starts three labs, writes
an inventory with their passwords vaulted, and runs the collection's
rotate_relay_password playbook (the README's) against them with forks 3."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from ansible.parsing.vault import VaultLib, VaultSecret

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO / "ansible_collections/remediate/exchange/playbooks/rotate_relay_password.yml"
ORGS = ("org1", "org2", "org3")
ROTATED = ("Outbound to Partner", "Outbound to Archive", "Outbound to Branch", "Outbound to Legacy")


def secrets_of(work: Path) -> list[str]:
    """The passwords the demo vaulted, decrypted with its vault password file."""
    vault = VaultLib(
        [("default", VaultSecret((work / "vault-password").read_text().strip().encode()))]
    )
    found = []
    for org in ORGS:
        text = (work / "host_vars" / f"{org}.yml").read_text()
        for body in re.findall(r"!vault \|\n((?:  .*\n)+)", text):
            found.append(vault.decrypt(body.replace("  ", "")).decode())
    return found


def test_the_fleet_demo_rotates_every_credential_in_three_organisations(tmp_path: Path) -> None:
    work = tmp_path / "fleet"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "REMEDIATE_BIN": str(Path(sys.executable).parent),
        "REMEDIATE_FLEET_DIR": str(work),
        "LC_ALL": "C.UTF-8",
        "ANSIBLE_NOCOLOR": "1",
    }
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "fleet-demo.sh"), "-vvv"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    recap = dict(re.findall(r"^(org\d)\s+:\s+(.*)$", output, re.MULTILINE))
    assert set(recap) == set(ORGS), output
    for counts in recap.values():
        assert "changed=1" in counts and "failed=0" in counts and "unreachable=0" in counts
    for org in ORGS:
        for name in ROTATED:
            assert f"changed: [{org} -> localhost] => (item={name})" in output
    assert "(item=Outbound to Relay)" not in output  # no credential on it: nothing to rotate
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in output  # -vvv printed the arguments
    found = secrets_of(work)
    assert len(found) == 6  # an admin and a relay password per organisation
    inventory = (work / "organisations.yml").read_text()
    for secret in found:
        assert secret not in output and secret not in inventory
        assert all(secret not in p.read_text() for p in (work / "host_vars").iterdir())
    assert json.loads(inventory)["exchange"]["hosts"]["org1"]["exchange_auth"] == "ntlm"
    assert not any((work / org / "ready.json").exists() for org in ORGS)  # the labs stopped


def test_the_readme_shows_the_collection_playbook() -> None:
    text = (REPO / "README.md").read_text()
    found = re.search(r"```yaml\n(- name: Rotate the relay password.*?)```", text, re.DOTALL)
    assert found and found.group(1) == PLAYBOOK.read_text()
