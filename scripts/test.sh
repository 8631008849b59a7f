#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine with Python 3.11, then
# runs ruff, mypy, import-linter and the whole pytest suite. README's test command; .ci/run
# calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
need_apt=()
command -v gnome-keyring-daemon >/dev/null || need_apt+=(gnome-keyring)
command -v dbus-daemon >/dev/null || need_apt+=(dbus)
command -v tmux >/dev/null || need_apt+=(tmux)
# a real MIT KDC for the Kerberos tests, and the headers gssapi/krb5 build against
command -v krb5kdc >/dev/null || [ -x /usr/sbin/krb5kdc ] || need_apt+=(krb5-kdc)
command -v kadmin.local >/dev/null || [ -x /usr/sbin/kadmin.local ] || need_apt+=(krb5-admin-server)
command -v kinit >/dev/null || need_apt+=(krb5-user)
command -v krb5-config >/dev/null || need_apt+=(libkrb5-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

PY=${PYTHON:-python3}
if ! "$PY" -c "import venv, ensurepip" 2>/dev/null; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# gssapi and krb5 (the kerberos extra) compile once (about 2.5 min), then come from pip's cache
.venv/bin/python -m pip install -q -e ".[test,kerberos,evtx]"

echo "== ruff"
.venv/bin/ruff check remediate tests benchmarks ansible_collections
echo "== mypy"
.venv/bin/mypy  # [tool.mypy] in pyproject.toml: the package, --strict flags on the core
echo "== import-linter"
.venv/bin/lint-imports --no-logo  # [tool.importlinter] contracts in pyproject.toml
echo "== vulture"
# dead code at 60% (unused functions, methods, attributes, variables); the names a framework,
# Exchange's data or the tests use are listed, with where, in the whitelist
.venv/bin/vulture remediate scripts/vulture_whitelist.py --min-confidence 60
echo "== ansible-test sanity (the remediate.exchange collection)"
# Every sanity test, each in the virtual environment ansible-test makes for it. ansible-test
# downloads its pip bootstrap from ci-files.testing.ansible.com, which is not reachable here:
# scripts/ansible_test_get_pip.py stands in for it (pip from ensurepip, then from PyPI).
# A home of its own keeps those environments between runs (first run about 1.5 min, then 20 s).
AT_HOME="$PWD/.venv/ansible-test-home"
mkdir -p "$AT_HOME/.ansible/test/cache"
cp scripts/ansible_test_get_pip.py \
  "$AT_HOME/.ansible/test/cache/$(.venv/bin/python scripts/ansible_test_get_pip.py --cache-name)"
PYV=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
(cd ansible_collections/remediate/exchange &&
  HOME="$AT_HOME" PATH="$OLDPWD/.venv/bin:$PATH" \
    "$OLDPWD/.venv/bin/ansible-test" sanity --local --python "$PYV" --color no)
echo "== pytest"
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python -m pytest "$@"
