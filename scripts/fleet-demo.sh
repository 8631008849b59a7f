#!/usr/bin/env bash
# The README's fleet playbook on this machine, in one command: three labs (three Exchange
# organisations), an inventory with one host each and their passwords vaulted in host_vars,
# then ansible-playbook with forks 3 runs remediate.exchange.rotate_relay_password against
# them. Arguments go to ansible-playbook (--check --diff to see the plan first, -v ...).
#
# No password is ever in argv: each lab writes its own to its ready file (mode 0600), a
# Python step reads them and writes them vaulted with a random vault password kept in a
# 0600 file, and ansible-playbook reads that file (--vault-password-file).
#
# REMEDIATE_FLEET_DIR=DIR keeps the labs' files, the inventory and the backups in DIR
# (default: a temporary directory, removed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BIN=${REMEDIATE_BIN:-$REPO/.venv/bin}
for tool in remediate python ansible-playbook; do
  if [ ! -x "$BIN/$tool" ]; then
    echo "fleet-demo: $BIN/$tool not found (install with: python3 -m venv .venv &&" \
      ".venv/bin/pip install -e '.[test]')" >&2
    exit 2
  fi
done
umask 077
if [ -n "${REMEDIATE_FLEET_DIR:-}" ]; then
  WORK=$REMEDIATE_FLEET_DIR
  mkdir -p "$WORK"
else
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/remediate-fleet.XXXXXX")
fi
ORGS=(org1 org2 org3)
pids=()
stop() {
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -z "${REMEDIATE_FLEET_DIR:-}" ]; then rm -rf "$WORK"; fi
}
trap stop EXIT

for org in "${ORGS[@]}"; do
  mkdir -p "$WORK/$org"
  # each lab its own state home: `remediate lab` keeps its login files in $XDG_STATE_HOME
  XDG_STATE_HOME="$WORK/$org/home" "$BIN/remediate" lab --state "$WORK/$org/state.json" \
    --ready-file "$WORK/$org/ready.json" >"$WORK/$org/lab.log" 2>&1 &
  pids+=($!)
done
for org in "${ORGS[@]}"; do
  for _ in $(seq 300); do
    [ -s "$WORK/$org/ready.json" ] && break
    sleep 0.1
  done
  if [ ! -s "$WORK/$org/ready.json" ]; then
    echo "fleet-demo: the lab for $org did not start:" >&2
    cat "$WORK/$org/lab.log" >&2
    exit 1
  fi
done

# inventory, vaulted host_vars, ansible.cfg and the vault password file
"$BIN/python" - "$WORK" "$REPO" "${ORGS[@]}" <<'PY'
import json
import secrets
import sys
from pathlib import Path

from ansible.parsing.vault import VaultLib, VaultSecret

work, repo, orgs = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
vault_password = secrets.token_urlsafe(24)
(work / "vault-password").write_text(vault_password + "\n")
vault = VaultLib([("default", VaultSecret(vault_password.encode()))])


def vaulted(value: str) -> str:
    body = vault.encrypt(value).decode().strip().splitlines()
    return "!vault |\n" + "".join(f"  {line}\n" for line in body)


hosts = {}
(work / "host_vars").mkdir(exist_ok=True)
for org in orgs:
    ready = json.loads((work / org / "ready.json").read_text())
    hosts[org] = {
        "exchange_url": ready["endpoint"],
        "exchange_auth": ready["auth"],
        "exchange_admin": ready["username"],
        "relay_user": ready["relay"]["username"],
    }
    (work / "host_vars" / f"{org}.yml").write_text(
        f"exchange_admin_password: {vaulted(ready['password'])}"
        f"relay_password: {vaulted(ready['relay']['password'])}"
    )
(work / "organisations.yml").write_text(json.dumps({"exchange": {"hosts": hosts}}, indent=2))
(work / "ansible.cfg").write_text(
    "[defaults]\nforks = 3\n"
    f"collections_path = {repo}\n"
    "retry_files_enabled = false\n"
    "interpreter_python = auto_silent\n"
)
PY

echo "fleet-demo: three organisations (labs) in $WORK; inventory organisations.yml"
export ANSIBLE_CONFIG="$WORK/ansible.cfg"
export XDG_STATE_HOME="$WORK/state"  # the modules' backups and audit log, beside the labs
export PATH="$BIN:$PATH"
set +e
"$BIN/ansible-playbook" -i "$WORK/organisations.yml" \
  --vault-password-file "$WORK/vault-password" \
  remediate.exchange.rotate_relay_password "$@"
status=$?
set -e
exit "$status"
