"""Writing the files remediate produces (scripts, reports, profiles, escalation bundles):
whole or not at all.

A file is written to a temporary name in the same directory and renamed into place, so a
failed or interrupted write leaves the previous file (or none), never half a script.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from remediate.errors import UsageError


def write_file(path: Path, text: str, *, what: str, private: bool = False) -> Path:
    """Write ``text`` to ``path`` atomically; ``private`` files (they name servers, accounts
    and backups) are mode 0600, others 0644. Errors name ``what`` (e.g. ``--output``)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UsageError(f"{what}: {path} is a directory")
    directory = path.parent
    if not directory.is_dir():
        raise UsageError(f"{what}: the directory {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    except OSError as exc:
        raise UsageError(f"{what}: cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600 if private else 0o644)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UsageError(f"{what}: cannot write {path}: {exc.strerror or exc}") from None
        raise
    return path


def private_directory(path: Path) -> Path:
    """Create ``path`` (and parents) readable by the owner only."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
