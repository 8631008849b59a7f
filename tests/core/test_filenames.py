"""Backup, script and escalation file names from connector names: Unicode letters kept, every
file system's reserved characters, device names and length limits avoided (Microsoft's
"Naming Files, Paths, and Namespaces"; ext4's 255-byte names)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remediate.core.filenames import MAX_PART_BYTES, file_name_part
from remediate.diagnose.escalation import default_path
from remediate.remote.connections import parse_server
from remediate.run import backup
from tests.executor_fakes import BROKEN, relay_plan

RESERVED = set('<>:"/\\|?*')
DEVICES = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{d}" for p in ("COM", "LPT") for d in "123456789"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("发往中继服务器", "发往中继服务器"),  # zh: a Chinese name is not "connector"
        ("發往 中繼", "發往-中繼"),
        ("Ausgehend über Relais (Größe)", "Ausgehend-über-Relais-Größe"),  # de
        ("Outbound to Relay", "Outbound-to-Relay"),
        ("../../etc/passwd", "etc-passwd"),
        ('a<b>c:d"e/f\\g|h?i*j', "a-b-c-d-e-f-g-h-i-j"),
        ("tab\there\x00nul\x1fend", "tab-here-nul-end"),
        ("evil\u202egnp.exe", "evil-gnp-exe"),  # a bidi override is not kept
        ("name. . .", "name"),
        ("CON", "CON_"),
        ("com1", "com1_"),
        ("LPT9", "LPT9_"),
        ("Lpt\u00b9", "Lpt\u00b9_"),
        ("CONNECT", "CONNECT"),
        ("?*<>", "connector"),
        ("", "connector"),
        ("Cafe\u0301", "Café"),  # NFC: one letter, as the name displays
    ],
)
def test_file_name_part(name: str, expected: str) -> None:
    assert file_name_part(name) == expected


def test_long_names_are_cut_in_bytes_at_a_letter_and_stay_distinct() -> None:
    first, second = "长" * 300 + "甲", "长" * 300 + "乙"
    a, b = file_name_part(first), file_name_part(second)
    assert a != b
    for part in (a, b):
        assert len(part.encode("utf-8")) <= MAX_PART_BYTES
        assert part.startswith("长" * 30) and part[-9] == "-"


@given(st.text(max_size=400))
def test_any_name_gives_a_part_every_file_system_takes(name: str) -> None:
    part = file_name_part(name)
    assert part and len(part.encode("utf-8")) <= MAX_PART_BYTES
    assert not RESERVED & set(part)
    assert all(ord(ch) >= 32 and ch.isprintable() for ch in part)
    assert part[-1] not in ". " and part[0] not in ". "
    assert part.upper() not in DEVICES


@given(st.text(min_size=1, max_size=300))
def test_the_part_can_be_created_as_a_file_here(name: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"20261201T093012123456Z-{file_name_part(name)}-undo.ps1"
        path.write_bytes(b"")
        assert [p.name for p in Path(directory).iterdir()] == [path.name]


def test_a_chinese_connector_backup_keeps_its_name(tmp_path: Path) -> None:
    environ = {"XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path)}
    connector = dataclasses.replace(BROKEN, name="发往中继")
    plan = dataclasses.replace(relay_plan(), connector="发往中继")
    saved = backup.write_backup(
        parse_server("http://127.0.0.1:5985/PowerShell"), connector, plan, environ=environ
    )
    assert saved.path.name.endswith("-发往中继.json") and saved.path.exists()
    assert saved.script.name.endswith("-发往中继-undo.ps1") and saved.script.exists()
    assert backup.load_backup(saved.path).connector.name == "发往中继"
    assert "-中继站-" in default_path("中继站", environ).name
