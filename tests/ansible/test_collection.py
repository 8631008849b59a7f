"""The remediate.exchange Ansible collection with the real engine: ansible-core's
``ansible-playbook`` (from PyPI, the test extra) runs the modules on the controller against
three in-process labs over real HTTP, one inventory host each, forks 3."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from remediate import api
from remediate.core.exchange import AuthMechanism
from remediate.lab.server import Lab
from tests.lab.lab_helpers import start_lab

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "ansible_collections" / "remediate" / "exchange"
BIN = Path(sys.executable).parent
RELAY = "Outbound to Relay"
HOSTS = ("ex1", "ex2", "ex3")

FLEET = """\
- name: Relay every organisation through its smart host with Basic authentication over TLS
  hosts: exchange
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Outbound to Relay
      remediate.exchange.send_connector:
        server: "{{ exchange_url }}"
        auth: basic
        admin_user: "{{ exchange_admin }}"
        admin_password: "{{ exchange_admin_password }}"
        state_dir: "{{ remediate_state_dir }}"
        name: Outbound to Relay
        mechanism: BasicAuthRequireTLS
        relay_user: "{{ relay_user }}"
        relay_password: "{{ relay_password }}"
      delegate_to: localhost
"""

INFO_AND_RETRY = """\
- name: Connectors, queues, retry
  hosts: exchange
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
    endpoint: &endpoint
      server: "{{ exchange_url }}"
      auth: basic
      admin_user: "{{ exchange_admin }}"
      admin_password: "{{ exchange_admin_password }}"
  tasks:
    - name: Read
      remediate.exchange.send_connector_info:
        <<: *endpoint
        name: Outbound to Relay
      delegate_to: localhost
      register: found
    - name: Two queues in Retry, one per source server
      ansible.builtin.assert:
        that:
          - found.connectors | length == 1
          - found.connectors[0].queues | map(attribute='server') | sort == ['EX01', 'EX02']
          - found.connectors[0].queues | map(attribute='status') | unique == ['Retry']
          - found.connectors[0].queues | map(attribute='cause') | unique == ['exchange-auth']
    - name: Retry, still failing (the connector is not fixed)
      remediate.exchange.queue_retry:
        <<: *endpoint
        name: Outbound to Relay
        wait: 2
        fail_on: []
      delegate_to: localhost
      register: retried
    - name: The verdict
      ansible.builtin.assert:
        that:
          - retried.flow == 'fails'
          - retried is changed
"""


@pytest.fixture(name="labs")
def labs_fixture(tmp_path: Path) -> Iterator[dict[str, Lab]]:
    running: dict[str, Lab] = {}
    try:
        for host in HOSTS:
            running[host] = start_lab(tmp_path / host, config_delay=0)
        yield running
    finally:
        for lab in running.values():
            lab.stop()


VAULT_PASSWORD = "vault-password-for-the-tests"
SECRETS = ("exchange_admin_password", "relay_password")


VAULT = """\
import json, sys
from ansible.parsing.vault import VaultLib, VaultSecret
vault = VaultLib([("default", VaultSecret(sys.argv[1].encode()))])
print(json.dumps([vault.encrypt(v).decode() for v in json.loads(sys.stdin.read())]))
"""


def vaulted(values: list[str], tmp_path: Path) -> list[str]:
    """``values`` as ``ansible-vault encrypt_string`` writes them (ansible-core's VaultLib,
    in a child with Ansible's directories under ``tmp_path``)."""
    done = subprocess.run(
        [sys.executable, "-c", VAULT, VAULT_PASSWORD],
        input=json.dumps(values),
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [
        "!vault |\n" + "".join(f"  {line}\n" for line in body.strip().splitlines())
        for body in json.loads(done.stdout)
    ]


def inventory(tmp_path: Path, labs: dict[str, Lab], wrong: str | None = None) -> Path:
    """One host per lab; the passwords in vaulted host_vars, as the README asks."""
    host_vars = tmp_path / "host_vars"
    host_vars.mkdir(exist_ok=True)
    hosts = {}
    for host, lab in labs.items():
        hosts[host] = {
            "exchange_url": lab.endpoint_url,
            "exchange_auth": "basic",
            "exchange_admin": lab.admin_user,
            "relay_user": lab.relay_user,
            "remediate_state_dir": str(tmp_path / "state"),
        }
        admin = "Wrong-canary-" + lab.admin_password[:6] if host == wrong else lab.admin_password
        secrets = vaulted([admin, lab.relay_password], tmp_path)
        (host_vars / f"{host}.yml").write_text(
            "".join(f"{name}: {value}" for name, value in zip(SECRETS, secrets, strict=True))
        )
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({"exchange": {"hosts": hosts}}))
    return path


def ansible_env(tmp_path: Path) -> dict[str, str]:
    """Ansible's home and temporary directories inside ``tmp_path``, nothing under ~."""
    return {
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path / "home"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "LC_ALL": "C.UTF-8",
    }


def playbook(tmp_path: Path, inventory_file: Path, text: str, *args: str) -> str:
    """Run ansible-playbook; its whole output (stdout and stderr)."""
    book = tmp_path / "play.yml"
    book.write_text(text)
    secret_file = tmp_path / "vault-password"
    secret_file.write_text(VAULT_PASSWORD + "\n")
    config = tmp_path / "ansible.cfg"
    config.write_text(
        "[defaults]\nforks = 3\n"
        f"collections_path = {REPO}\n"
        "retry_files_enabled = false\n"
        "interpreter_python = auto_silent\n"
    )
    env = {**ansible_env(tmp_path), "ANSIBLE_CONFIG": str(config)}
    done = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            *("-i", str(inventory_file), "--vault-password-file", str(secret_file)),
            *(str(book), *args),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done.stdout + done.stderr


def recap(output: str) -> dict[str, dict[str, int]]:
    found = {}
    for host, counts in re.findall(r"^(ex\d)\s+:\s+(.*)$", output, re.MULTILINE):
        found[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
    assert set(found) == set(HOSTS), output
    return found


def state(labs: dict[str, Lab]) -> dict[str, bytes]:
    """The labs' persisted state, after any debounced save still pending is written."""
    for lab in labs.values():
        lab.organization.flush()
    files = {host: lab.state_file for host, lab in labs.items()}
    assert all(f is not None and f.is_file() for f in files.values())
    return {host: f.read_bytes() for host, f in files.items() if f is not None}


def mechanism(lab: Lab) -> AuthMechanism:
    with api.connect(
        lab.endpoint_url, user=lab.admin_user, password=lab.admin_password, auth="basic"
    ) as handle:
        return api.read_connectors(handle, RELAY)[0].smart_host_auth_mechanism


def assert_no_secret(labs: dict[str, Lab], *outputs: str) -> None:
    text = "\n".join(outputs)
    for lab in labs.values():
        for secret in (lab.admin_password, lab.relay_password):
            assert secret not in text
            assert secret[:6] not in text  # the wrong password in the refused-login run


def test_check_diff_apply_then_nothing_to_do(tmp_path: Path, labs: dict[str, Lab]) -> None:
    hosts = inventory(tmp_path, labs)
    untouched = state(labs)

    checked = playbook(tmp_path, hosts, FLEET, "--check", "--diff")
    assert all(c["changed"] == 1 and c["failed"] == 0 for c in recap(checked).values()), checked
    assert state(labs) == untouched  # check mode sent no change
    assert all(mechanism(lab) is AuthMechanism.EXCHANGE_SERVER for lab in labs.values())
    assert re.search(r'^-\s+"SmartHostAuthMechanism": "ExchangeServer"', checked, re.M), checked
    assert re.search(r'^\+\s+"SmartHostAuthMechanism": "BasicAuthRequireTLS"', checked, re.M)
    assert '"AuthenticationCredential": "not set"' in checked

    applied = playbook(tmp_path, hosts, FLEET, "-vvv")
    assert all(c["changed"] == 1 and c["failed"] == 0 for c in recap(applied).values()), applied
    assert all(state(labs)[h] != untouched[h] for h in HOSTS)
    assert all(mechanism(lab) is AuthMechanism.BASIC_AUTH_REQUIRE_TLS for lab in labs.values())
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in applied  # -vvv printed the arguments
    assert applied.count('"backup": "' + str(tmp_path / "state")) == 3

    again = playbook(tmp_path, hosts, FLEET, "--diff")
    assert all(c["changed"] == 0 and c["failed"] == 0 for c in recap(again).values()), again
    assert_no_secret(labs, checked, applied, again)


def test_a_refused_login_fails_that_host_alone(tmp_path: Path, labs: dict[str, Lab]) -> None:
    output = playbook(tmp_path, inventory(tmp_path, labs, wrong="ex2"), FLEET, "-vvv")
    counts = recap(output)
    assert counts["ex2"]["failed"] == 1 and counts["ex2"]["changed"] == 0, output
    assert all(counts[h]["failed"] == 0 and counts[h]["changed"] == 1 for h in ("ex1", "ex3"))
    assert mechanism(labs["ex2"]) is AuthMechanism.EXCHANGE_SERVER
    assert mechanism(labs["ex1"]) is AuthMechanism.BASIC_AUTH_REQUIRE_TLS
    assert "fatal: [ex2 -> localhost]: FAILED!" in output
    assert re.search(r'"msg": ".*refused the user name or password', output), output
    assert_no_secret(labs, output)


def test_info_and_retry(tmp_path: Path, labs: dict[str, Lab]) -> None:
    output = playbook(tmp_path, inventory(tmp_path, labs), INFO_AND_RETRY)
    assert all(c["failed"] == 0 and c["ok"] == 4 for c in recap(output).values()), output
    assert_no_secret(labs, output)


def readme_playbook() -> str:
    text = (REPO / "README.md").read_text()
    found = re.search(r"```yaml\n(- name: Rotate the relay password.*?)```", text, re.DOTALL)
    assert found, "README has the rotation playbook"
    return found.group(1)


def test_the_readme_rotation_playbook(tmp_path: Path, labs: dict[str, Lab]) -> None:
    """Every connector holding a credential is re-entered (changed each run: it cannot be
    compared); the relay still accepts mail through the rotated credential."""
    hosts = inventory(tmp_path, labs)
    playbook(tmp_path, hosts, FLEET)  # Outbound to Relay gets a credential too
    output = playbook(tmp_path, hosts, readme_playbook(), "-vvv")
    assert all(c["failed"] == 0 and c["changed"] == 1 for c in recap(output).values()), output
    for name in ("Outbound to Relay", "Outbound to Partner", "Outbound to Archive"):
        assert f"(item={name})" in output
    assert "(item=Internet Mail)" not in output  # no credential: nothing to rotate
    assert_no_secret(labs, output)


def test_the_collection_builds(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path)],
        cwd=COLLECTION,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=ansible_env(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    built = tmp_path / "remediate-exchange-1.0.0.tar.gz"
    with tarfile.open(built) as archive:
        names = set(archive.getnames())
    for module in ("send_connector", "send_connector_info", "queue_retry"):
        assert f"plugins/modules/{module}.py" in names
    assert "galaxy.yml" not in names and "MANIFEST.json" in names
