"""Writing the files remediate produces (scripts, reports, profiles, escalation bundles):
whole or not at all, and private when they name servers, accounts or backups.

A file is written to a temporary name in the same directory and renamed into place, so a
failed or interrupted write leaves the previous file (or none), never half a script.

Private means mode 0600 (directories 0700) on POSIX. On Windows, where the mode bits mean
nothing, it means an owner-only ACL set with icacls (inheritance removed, full control for
the current user alone). ``windows()`` is the one platform switch; on Windows there is no
O_NOFOLLOW, so a symbolic link is refused by a check before the open (a narrower guard than
POSIX's: creating symbolic links needs an elevated or developer-mode account there), and no
uid, so the ownership check is left to the ACL.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path, PureWindowsPath
from typing import Any

from remediate.core.errors import UsageError

UTF8_BOM = b"\xef\xbb\xbf"
NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)  # absent on Windows: see above
BINARY: int = getattr(os, "O_BINARY", 0)  # Windows only: no newline translation
_run = subprocess.run  # the icacls runner (tests replace it: no Windows here)
PLATFORM: str = sys.platform  # what windows() decides on (tests set "win32")


def windows() -> bool:
    """The one platform switch: Windows paths, ACLs and locks instead of XDG, POSIX modes
    and flock; every module asks it."""
    return PLATFORM == "win32"


def icacls_argv(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    """icacls arguments giving ``path`` an owner-only ACL: the inherited entries removed (a
    file remediate creates has no others) and full control granted to the current user alone
    (a directory's entry is inherited by the files made in it). icacls from %SystemRoot%,
    never from PATH."""
    environ = dict(os.environ) if environ is None else environ
    user = environ.get("USERNAME", "")
    if not user:
        raise UsageError(f"cannot make {path} private: USERNAME is not set")
    domain = environ.get("USERDOMAIN", "")
    account = f"{domain}\\{user}" if domain else user
    rights = "(OI)(CI)F" if Path(path).is_dir() else "F"
    root = PureWindowsPath(environ.get("SystemRoot", "C:\\Windows"))
    icacls = str(root / "System32" / "icacls.exe")
    return [icacls, str(path), "/inheritance:r", "/grant:r", f"{account}:{rights}"]


def restrict_windows(path: Path) -> None:
    """Owner-only ACL on ``path`` (Windows); UsageError when icacls refuses."""
    try:
        done = _run(icacls_argv(path), capture_output=True, text=True, check=False)
    except OSError as exc:
        raise UsageError(f"cannot make {path} private: {exc.strerror or exc}") from None
    if done.returncode != 0:
        detail = (done.stdout or done.stderr or "").strip().splitlines()
        raise UsageError(
            f"cannot make {path} private (icacls: {detail[0] if detail else done.returncode})"
        )


def make_private(path: Path, mode: int = 0o600) -> None:
    """``path`` readable by its owner only: ``mode`` on POSIX, an owner-only ACL on Windows."""
    if windows():
        restrict_windows(path)
    else:
        os.chmod(path, mode)


def create_private(path: Path) -> int:
    """A new file (never an existing one, never through a symbolic link) open for writing,
    private before anything is written to it. FileExistsError when it exists."""
    if windows() and Path(path).is_symlink():
        raise _refused(path, "file", OSError(errno.ELOOP, "a symbolic link"))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | BINARY, 0o600)
    if windows():
        _closing_on_error(fd, restrict_windows, path)
    return fd


def _closing_on_error(fd: int, check: Callable[..., object], *args: object) -> None:
    """Run ``check``; if it fails, close ``fd`` before the error goes on."""
    try:
        check(*args)
    except BaseException:
        os.close(fd)
        raise


def script_bytes(text: str) -> bytes:
    """A .ps1 as Windows PowerShell 5.1 (the Exchange Management Shell's host) reads it
    right: UTF-8 with a byte order mark (without one it reads the file as ANSI and garbles
    a German or Chinese connector name) and CRLF line ends."""
    return UTF8_BOM + text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def write_script(path: Path, text: str, *, what: str, private: bool = False) -> Path:
    """A PowerShell script written as ``script_bytes`` (BOM, CRLF), atomically."""
    return write_file(path, script_bytes(text), what=what, private=private)


def write_file(path: Path, text: str | bytes, *, what: str, private: bool = False) -> Path:
    """Write ``text`` (bytes as they are) to ``path`` atomically; ``private`` files (they
    name servers, accounts and backups) are mode 0600, others 0644. Errors name ``what``
    (e.g. ``--output``)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UsageError(f"{what}: {path} is a directory")
    if path.exists() and not path.is_file():
        # a device or a pipe (/dev/null, /dev/stdout): renaming over it would replace it
        raise UsageError(
            f"{what}: {path} is not a regular file; remediate writes a new file, never over a "
            "device or pipe",
            hint="leave out the option to print to stdout",
        )
    directory = path.parent
    if not directory.is_dir():
        raise UsageError(f"{what}: the directory {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    except OSError as exc:
        raise UsageError(f"{what}: cannot write {path}: {exc.strerror or exc}") from None
    try:
        if private:
            make_private(Path(tmp))  # before the data is in it (the rename keeps the ACL)
        elif not windows():
            os.chmod(tmp, 0o644)
        data = text if isinstance(text, bytes) else text.encode("utf-8")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UsageError(f"{what}: cannot write {path}: {exc.strerror or exc}") from None
        raise
    return path


def private_directory(path: Path) -> Path:
    """Create ``path`` (and parents) readable by the owner only; an existing one is checked
    (refused when it is a symbolic link, not a directory or someone else's) and its mode
    repaired to 0700."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_symlink():
            path.mkdir(exist_ok=True, mode=0o700)
    except OSError as exc:
        raise UsageError(f"cannot create the directory {path}: {exc.strerror or exc}") from None
    if windows():
        # no O_DIRECTORY, no uid: refuse a link or a file, then the owner-only ACL
        if path.is_symlink() or not path.is_dir():
            raise _refused(path, "directory", OSError(errno.ENOTDIR, "not a directory"))
        restrict_windows(path)
        return path
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise _refused(path, "directory", exc) from None
    try:
        _check_own(path, fd, stat.S_ISDIR, "directory", 0o700)
    finally:
        os.close(fd)
    return path


def open_private_append(path: Path) -> int:
    """A descriptor appending to ``path`` (created 0600), never through a symbolic link; an
    existing file is checked like ``private_directory`` and repaired to 0600 (on Windows:
    a link refused, the owner-only ACL set)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | NOFOLLOW | BINARY
    if windows() and Path(path).is_symlink():
        raise _refused(path, "file", OSError(errno.ELOOP, "a symbolic link"))
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise _refused(path, "file", exc) from None
    if windows():
        _closing_on_error(fd, restrict_windows, path)
    else:
        _closing_on_error(fd, _check_own, path, fd, stat.S_ISREG, "file", 0o600)
    return fd


def _refused(path: Path, kind: str, exc: OSError) -> UsageError:
    if exc.errno == errno.ELOOP or Path(path).is_symlink():
        return UsageError(
            f"{path} is a symbolic link; remediate does not write its records through one",
            hint=f"remove the link (and find out who planted it); remediate then creates a "
            f"private {kind} there",
        )
    return UsageError(f"cannot open {path}: {exc.strerror or exc}")


def _check_own(path: Path, fd: int, is_kind: Callable[[int], bool], kind: str, mode: int) -> None:
    info = os.fstat(fd)
    if not is_kind(info.st_mode):
        raise UsageError(f"{path} is not a {kind}; remediate keeps its records there")
    if info.st_uid != os.getuid():
        raise UsageError(
            f"{path} belongs to another user (uid {info.st_uid}); remediate does not write "
            "its records there"
        )
    if stat.S_IMODE(info.st_mode) != mode:
        os.fchmod(fd, mode)


# --- reading what admins give us ------------------------------------------------------------


def read_bounded(path: Path, limit: int, what: str, *, cannot: str = "cannot be read") -> bytes:
    """At most ``limit`` bytes of ``path``; UsageError naming ``what`` when it cannot be read
    or is larger (the bound keeps a crafted or mistaken file from eating memory)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"{what}: {cannot} ({exc.strerror or exc})") from None
    if len(raw) > limit:
        raise UsageError(
            f"{what}: larger than {_size(limit)}; not read",
            hint="give only the part that matters (the events of the days in question)",
        )
    return raw


def _size(count: int) -> str:
    return f"{count // (1024 * 1024)} MiB" if count >= 1024 * 1024 else f"{count // 1024} KiB"


def decode_text(raw: bytes) -> str:
    """Bytes of a text file as admins save them on Windows: UTF-16 by its byte order mark or,
    without one, by its NUL pattern (ASCII text in UTF-16 has every other byte NUL); else
    UTF-8 (a BOM dropped); else Windows-1252 (Notepad's "ANSI"). The one decoder for event
    files and bulk files: never a guess by whether UTF-16 decoding happens to succeed."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="replace")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", errors="replace")
    utf16 = _utf16_by_nuls(raw)
    if utf16 is not None:
        return raw.decode(utf16, errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _utf16_by_nuls(raw: bytes) -> str | None:
    """ "utf-16-le"/"utf-16-be" when NULs fill the odd (even) bytes of the first KiB and
    hardly any of the others; None otherwise (text in UTF-8 or cp1252 has no NUL)."""
    sample = raw[:1024]
    if len(sample) < 2 or b"\x00" not in sample:
        return None
    even, odd = sample[0::2], sample[1::2]
    pairs = len(sample) // 2
    odd_nuls, even_nuls = odd.count(0), even.count(0)
    if odd_nuls * 10 >= pairs * 3 and even_nuls * 10 <= odd_nuls:
        return "utf-16-le"
    if even_nuls * 10 >= pairs * 3 and odd_nuls * 10 <= even_nuls:
        return "utf-16-be"
    return None


MAX_JSON_DEPTH = 32


def read_json(path: Path, *, limit: int, what: str, cannot: str = "cannot be read") -> Any:
    """A JSON file remediate wrote (a backup, a bulk report) read back defensively: at most
    ``limit`` bytes, UTF-8, nested at most MAX_JSON_DEPTH deep. Any problem is one UsageError
    "PATH: not WHAT (why)": a crafted file never gives a traceback."""
    raw = read_bounded(path, limit, str(path), cannot=cannot)
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not {what} (not UTF-8 text)") from None
    except RecursionError:
        raise UsageError(f"{path}: not {what} (nested too deep)") from None
    except ValueError as exc:
        raise UsageError(f"{path}: not {what} ({exc})") from None
    if _depth(data) > MAX_JSON_DEPTH:
        raise UsageError(f"{path}: not {what} (nested more than {MAX_JSON_DEPTH} levels)")
    return data


def _depth(data: Any) -> int:
    """How deep lists and objects nest (iteratively: no recursion to exhaust)."""
    deepest = 0
    pending = [(data, 1)]
    while pending:
        value, level = pending.pop()
        if isinstance(value, dict):
            values: Any = value.values()
        elif isinstance(value, list):
            values = value
        else:
            continue
        deepest = max(deepest, level)
        pending.extend((v, level + 1) for v in values)
    return deepest
