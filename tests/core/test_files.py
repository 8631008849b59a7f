"""Files remediate writes: whole or not at all, private ones 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from remediate.core.errors import UsageError
from remediate.core.files import write_file


def test_modes_and_replacement(tmp_path: Path) -> None:
    script = write_file(tmp_path / "fix.ps1", "one\n", what="--output")
    report = write_file(tmp_path / "report.json", "{}\n", what="--report", private=True)
    assert stat.S_IMODE(script.stat().st_mode) == 0o644
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    write_file(script, "two\n", what="--output")
    assert script.read_text() == "two\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fix.ps1", "report.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = write_file(tmp_path / "fix.ps1", "old\n", what="--output")
    with pytest.raises(UnicodeEncodeError):
        write_file(target, "bad \udc80 surrogate", what="--output")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["fix.ps1"]


@pytest.mark.parametrize(
    ("relative", "message"),
    [(".", "is a directory"), ("missing/fix.ps1", "the directory .* does not exist")],
)
def test_bad_targets_are_one_line(tmp_path: Path, relative: str, message: str) -> None:
    with pytest.raises(UsageError, match=f"--output: .*{message}"):
        write_file(tmp_path / relative, "x", what="--output")


def test_a_fifo_is_refused_not_replaced(tmp_path: Path) -> None:
    """Renaming over a device or pipe would replace it (as root: /dev/null itself). A FIFO
    stands in for the device here: creating a device node in a test is not ours to do."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="not a regular file"):
        write_file(fifo, "x", what="--output")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]
