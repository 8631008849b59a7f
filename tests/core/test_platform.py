"""The platform switch (remediate.core.files.windows): paths, private files and locks.

No Windows machine exists here, so the Windows branches run on Linux with the switch turned
on and two stand-ins, each said where used: the Windows known-folder lookup of platformdirs
(SHGetKnownFolderPath, Windows-only) and the icacls runner (icacls.exe, Windows-only). What
they are given (the folder names, the exact icacls argv) is asserted.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PureWindowsPath
from types import SimpleNamespace
from typing import Any

import platformdirs.windows
import pytest

from remediate.core import files, paths
from remediate.core.errors import UsageError
from remediate.remote import connections
from remediate.run import audit, backup, locks

WINDOWS_ENV = {"USERNAME": "ann", "USERDOMAIN": "CONTOSO", "SystemRoot": r"C:\Windows"}
FOLDERS = {  # stand-in for the known folders of a user "ann" (Windows-only API)
    "CSIDL_APPDATA": r"C:\Users\ann\AppData\Roaming",
    "CSIDL_LOCAL_APPDATA": r"C:\Users\ann\AppData\Local",
}


# --- Linux: today's behaviour, exactly --------------------------------------------------------


def test_linux_paths_follow_xdg_from_the_given_mapping() -> None:
    env = {"HOME": "/home/ann", "XDG_CONFIG_HOME": "/cfg", "XDG_STATE_HOME": "/st"}
    assert paths.config_dir(env) == Path("/cfg/remediate")
    assert paths.state_dir(env) == Path("/st/remediate")
    assert paths.config_dir({"HOME": "/home/ann"}) == Path("/home/ann/.config/remediate")
    assert paths.state_dir({"HOME": "/home/ann", "XDG_STATE_HOME": ""}) == Path(
        "/home/ann/.local/state/remediate"
    )


def test_every_module_takes_its_directory_from_paths(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "s")}
    state = tmp_path / "s" / "remediate"
    assert backup.backup_dir(env) == state / "backups"
    assert audit.audit_path(env) == state / "audit.log"
    store = connections.ProfileStore(environ={"XDG_CONFIG_HOME": str(tmp_path / "c")})
    assert store.path.parent == tmp_path / "c" / "remediate"


# --- Windows branches (switch on, stand-ins named) -------------------------------------------


@pytest.fixture
def on_windows(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The switch on; icacls replaced by a recorder (stand-in: no icacls.exe here)."""
    calls: list[list[str]] = []

    def run(argv: list[str], **kwargs: Any) -> SimpleNamespace:
        assert kwargs.get("shell") is not True
        calls.append(list(argv))
        return SimpleNamespace(returncode=0, stdout="processed 1 file", stderr="")

    monkeypatch.setattr(files, "PLATFORM", "win32")
    monkeypatch.setattr(files, "_run", run)
    for name, value in WINDOWS_ENV.items():
        monkeypatch.setenv(name, value)
    return calls


def test_windows_paths_are_appdata_and_localappdata(
    on_windows: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # stand-in for SHGetKnownFolderPath, which platformdirs calls on Windows only
    monkeypatch.setattr(platformdirs.windows, "_RESOLVE_WIN_FOLDER", FOLDERS.__getitem__)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    for environ in ({"HOME": "/home/ann"}, None):
        config = PureWindowsPath(str(paths.config_dir(environ)))
        state = PureWindowsPath(str(paths.state_dir(environ)))
        assert config == PureWindowsPath(r"C:\Users\ann\AppData\Roaming\remediate")
        assert state == PureWindowsPath(r"C:\Users\ann\AppData\Local\remediate")
    # an explicit XDG_* still wins (the demo's records go to a directory of their own)
    given = {"XDG_CONFIG_HOME": r"D:\cfg", "XDG_STATE_HOME": r"D:\demo-records"}
    assert paths.state_dir(given) == Path(r"D:\demo-records") / "remediate"
    assert paths.config_dir(given) == Path(r"D:\cfg") / "remediate"


def test_icacls_argv_is_owner_only_and_from_system_root(tmp_path: Path) -> None:
    file = tmp_path / "profiles.json"
    file.write_text("{}")
    assert files.icacls_argv(file, WINDOWS_ENV) == [
        r"C:\Windows\System32\icacls.exe",
        str(file),
        "/inheritance:r",
        "/grant:r",
        "CONTOSO\\ann:F",
    ]
    assert files.icacls_argv(tmp_path, {"USERNAME": "ann"})[1:] == [
        str(tmp_path),
        "/inheritance:r",
        "/grant:r",
        "ann:(OI)(CI)F",  # inherited by the files made in the directory
    ]
    with pytest.raises(UsageError, match="USERNAME is not set"):
        files.icacls_argv(file, {})


def test_windows_private_write_sets_the_acl_before_the_data(
    on_windows: list[list[str]], tmp_path: Path
) -> None:
    sizes: list[int] = []
    recorder = files._run

    def run(argv: list[str], **kwargs: Any) -> SimpleNamespace:
        sizes.append(os.path.getsize(argv[1]))
        return recorder(argv, **kwargs)

    files._run = run  # type: ignore[assignment]  # restored by monkeypatch of the fixture
    target = tmp_path / "profiles.json"
    files.write_file(target, '{"secret-free": true}', what="profiles", private=True)
    assert target.read_text() == '{"secret-free": true}'
    assert len(on_windows) == 1 and sizes == [0]  # the ACL was set while the file was empty
    argv = on_windows[0]
    assert argv[0] == r"C:\Windows\System32\icacls.exe"
    assert Path(argv[1]).parent == tmp_path and argv[1] != str(target)  # the temporary file
    assert argv[2:] == ["/inheritance:r", "/grant:r", "CONTOSO\\ann:F"]


def test_windows_private_directory_and_append_file(
    on_windows: list[list[str]], tmp_path: Path
) -> None:
    directory = files.private_directory(tmp_path / "state")
    fd = files.open_private_append(directory / "audit.log")
    os.close(fd)
    assert on_windows == [
        files.icacls_argv(directory),
        [*files.icacls_argv(directory / "audit.log")],
    ]
    assert on_windows[0][-1] == "CONTOSO\\ann:(OI)(CI)F"
    assert on_windows[1][-1] == "CONTOSO\\ann:F"


def test_windows_refuses_symbolic_links_without_o_nofollow(
    on_windows: list[list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "NOFOLLOW", 0)  # Windows has no O_NOFOLLOW
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "planted.log").symlink_to(tmp_path / "elsewhere" / "x")
    (tmp_path / "planted-dir").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UsageError, match="symbolic link"):
        files.open_private_append(tmp_path / "planted.log")
    with pytest.raises(UsageError, match="symbolic link"):
        files.create_private(tmp_path / "planted.log")
    with pytest.raises(UsageError, match="symbolic link"):
        files.private_directory(tmp_path / "planted-dir")
    assert not (tmp_path / "elsewhere" / "x").exists() and on_windows == []


def test_windows_icacls_failure_is_one_clear_error(
    on_windows: list[list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        files,
        "_run",
        lambda argv, **kw: SimpleNamespace(returncode=5, stdout="", stderr="Access is denied."),
    )
    target = tmp_path / "r.json"
    with pytest.raises(UsageError, match=r"cannot make .* private \(icacls: Access is denied.\)"):
        files.write_file(target, "{}", what="--report", private=True)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_windows_audit_operator_never_calls_getuid(
    on_windows: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_user() -> str:
        raise OSError("no user name")

    def getuid() -> int:
        raise AssertionError("os.getuid reached on Windows")

    monkeypatch.setattr(audit.getpass, "getuser", no_user)
    monkeypatch.setattr(audit.os, "getuid", getuid)
    audit._operator.cache_clear()  # asked again, under the monkeypatches
    try:
        assert audit._operator() == "unknown user"
    finally:
        audit._operator.cache_clear()


class FakeMsvcrt:
    """Stand-in for msvcrt (Windows-only): records locking calls, refuses a held byte."""

    LK_NBLCK, LK_UNLCK = 2, 0

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int]] = []
        self.held = False

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        self.calls.append((os.lseek(fd, 0, os.SEEK_CUR), mode, nbytes))
        if mode == self.LK_NBLCK:
            if self.held:
                raise PermissionError(13, "Permission denied")
            self.held = True
        else:
            self.held = False


def test_windows_locks_use_msvcrt_on_a_byte_past_the_holder_line(
    on_windows: list[list[str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = FakeMsvcrt()
    real_import = locks.importlib.import_module

    def import_module(name: str) -> Any:
        assert name != "fcntl", "fcntl imported on Windows"
        return fake if name == "msvcrt" else real_import(name)

    monkeypatch.setattr(locks.importlib, "import_module", import_module)
    # stand-in for the known-folder lookup (Windows-only): %LOCALAPPDATA% under tmp_path
    monkeypatch.setattr(platformdirs.windows, "_RESOLVE_WIN_FOLDER", lambda n: str(tmp_path / n))
    connection = connections.Connection(server="ex01.contoso.com", port=80)
    env = {locks.WAIT_ENV: "0"}
    first = locks.ConnectorLocks(connection, env, ["Outbound"])
    with first:
        offset = locks.WINDOWS_LOCK_OFFSET
        assert fake.calls == [(offset, FakeMsvcrt.LK_NBLCK, 1)]
        second = locks.ConnectorLocks(connection, env, ["outbound"])
        with pytest.raises(locks.ConnectorBusy, match=rf"pid {os.getpid()} since"):
            second.__enter__()
    assert fake.calls[-1] == (locks.WINDOWS_LOCK_OFFSET, FakeMsvcrt.LK_UNLCK, 1)
    assert not fake.held
    lock_files = list((tmp_path / "CSIDL_LOCAL_APPDATA" / "remediate" / "locks").iterdir())
    assert len(lock_files) == 1 and lock_files[0].read_text().startswith(f"pid {os.getpid()}")


def test_posix_private_files_keep_their_modes(tmp_path: Path) -> None:
    assert files.windows() is False
    target = files.write_file(tmp_path / "p.json", "{}", what="x", private=True)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    os.close(files.create_private(tmp_path / "b.json"))
    assert stat.S_IMODE((tmp_path / "b.json").stat().st_mode) == 0o600
