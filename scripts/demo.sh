#!/usr/bin/env bash
# Installs remediate into .venv on a fresh Debian machine with Python 3.11 and runs the main
# job on the embedded lab: the guided fix for event 2016 (README's first set-up command).
# A second run starts at once: pip is skipped while the installed remediate is this
# checkout's (editable), at pyproject.toml's version, with every dependency it lists present.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import venv, ensurepip" 2>/dev/null; then
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
current() {
  .venv/bin/python - <<'PY' 2>/dev/null
import re, sys, tomllib
from importlib import metadata
from pathlib import Path

project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
dist = metadata.distribution("remediate")
import remediate

if dist.version != project["version"]:
    sys.exit(1)
if Path(remediate.__file__).resolve().parent != Path("remediate").resolve():
    sys.exit(1)  # not this checkout's editable install


def key(requirement):
    """'PyYAML>=6.0,<7' and 'pyyaml<7,>=6.0' are the same requirement."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
    rest = re.sub(r"\s", "", requirement[len(name):])
    return name.lower().replace("_", "-"), tuple(sorted(rest.split(",")))


for requirement in project["dependencies"]:
    metadata.version(key(requirement)[0])  # PackageNotFoundError: a dependency is missing
installed = {key(r) for r in dist.requires or () if "extra ==" not in r}
sys.exit(0 if installed == {key(r) for r in project["dependencies"]} else 1)
PY
}
if current; then
  echo "remediate $(.venv/bin/remediate --version | cut -d' ' -f2) is installed and current: pip is skipped."
else
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e .
fi
exec .venv/bin/remediate demo "$@"
