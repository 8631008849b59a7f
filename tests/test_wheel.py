"""The wheel carries playbooks and templates: build it, install it in a fresh venv, render.

Slow-ish (about ten seconds: a wheel build and a pip install that takes the dependencies from
the package index or pip's cache), but it is the only proof that an installed copy works
outside the checkout.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
ARGS = [
    "plan",
    "2016",
    "--connector",
    "Outbound to Relay",
    "--mechanism",
    "BasicAuthRequireTLS",
    "--username",
    "relay@contoso.com",
    "--smart-host",
    "smtp.relay.example",
    "--port",
    "587",
]


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=300, check=False)
    assert result.returncode == 0, f"{argv[:3]} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _script_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("# Generated: ")]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv (no system site packages) with the wheel built from this checkout."""
    work = tmp_path_factory.mktemp("wheel")
    dist = work / "dist"
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)], cwd=work)
    (wheel,) = dist.glob("remediate-*.whl")
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    _run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], cwd=work)
    return env_dir


def test_installed_wheel_renders_the_same_plan(installed: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    from_wheel = _run([str(installed / "bin" / "remediate"), *ARGS], cwd=elsewhere)
    from_checkout = _run([str(Path(sys.executable).parent / "remediate"), *ARGS], cwd=ROOT)
    assert _script_lines(from_wheel.stdout) == _script_lines(from_checkout.stdout)
    assert "Set-SendConnector" in from_wheel.stdout


def test_installed_wheel_reads_its_own_data(installed: Path, tmp_path: Path) -> None:
    probe = (
        "from remediate.core.resources import playbooks_dir, templates_dir; "
        "print(playbooks_dir()); print(templates_dir())"
    )
    out = _run([str(installed / "bin" / "python"), "-c", probe], cwd=tmp_path).stdout.split()
    assert len(out) == 2
    for path in map(Path, out):
        assert installed in path.parents and path.parent.name == "_data"
    listing = _run([str(installed / "bin" / "remediate"), "playbooks"], cwd=tmp_path).stdout
    assert "smarthost-auth-credential" in listing and "send-connection-error" in listing
    schemas = (
        "from remediate.ui.jsonout import SCHEMAS, schema; print(SCHEMAS); print(schema('plan'))"
    )
    printed = _run([str(installed / "bin" / "python"), "-c", schemas], cwd=tmp_path).stdout
    where, shape = printed.split("\n", 1)
    assert installed in Path(where).parents and "remediate plan" in shape
