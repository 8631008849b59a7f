"""README's short pypsrp script, run as written against a lab, repairs the seeded 2016
connector, its queues on both source servers drain into the smart host, and it shows
SmartHosts as pypsrp hands a MultiValuedProperty back (raw <LST> XML)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.lab_helpers import start_lab

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def readme_script() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(
        r"<!-- lab-script:start -->\s*```python\n(.*?)```\s*<!-- lab-script:end -->", text, re.S
    )
    assert found, "README.md has no lab-script block"
    return found.group(1)


def test_readme_script_repairs_the_2016_connector(tmp_path: Path) -> None:
    script = readme_script()
    assert len([line for line in script.splitlines() if line.strip()]) <= 19
    lab = start_lab(tmp_path, auth="ntlm")  # the lab's default: NTLM, message encryption
    try:
        lab.write_ready_file(tmp_path / "lab.json")
        (tmp_path / "repair.py").write_text(script, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "repair.py"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "drained into the smart host" in done.stdout
        assert "raw XML: <LST><S>localhost</S></LST>" in done.stdout
        assert len(lab.smart_host.messages) == 5  # EX01\\4 (3) and EX02\\12 (2)
        assert lab.relay_password not in done.stdout + done.stderr
    finally:
        lab.stop()
