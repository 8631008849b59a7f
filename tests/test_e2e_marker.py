"""The e2e marker is enforced (tests/e2e_marker.py): in a pytest run of its own, a test that
runs the installed command without the marker fails and names what it did; marked, it passes;
and a test that starts nothing is not marked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

RUNS = """
import subprocess, sys
from pathlib import Path

import pytest

EXE = str(Path(sys.executable).with_name("remediate"))

def test_unmarked():
    subprocess.run([EXE, "--version"], check=True, capture_output=True)

@pytest.mark.e2e
def test_marked():
    subprocess.run([EXE, "--version"], check=True, capture_output=True)

def test_starts_nothing():
    assert sum(range(4)) == 6
"""

pytestmark = pytest.mark.e2e  # the run below starts the installed command


def test_the_marker_is_enforced(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    pytester.makepyfile(test_runs=RUNS)
    pytester.makeini("[pytest]\nmarkers =\n    e2e: end to end\n")
    result = pytester.runpytest_subprocess("-p", "tests.e2e_marker", "-q")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*test_unmarked runs the installed remediate command but is not marked e2e*"]
    )
    selected = pytester.runpytest_subprocess("-p", "tests.e2e_marker", "-q", "-m", "not e2e")
    selected.assert_outcomes(passed=1, failed=1, deselected=1)
