"""Where remediate keeps its files: the one place that decides.

Linux and other POSIX systems: the XDG rules, read from the given environment mapping (so a
test or ``demo`` can point them elsewhere): ``$XDG_CONFIG_HOME/remediate`` (default
``~/.config/remediate``) for profiles, ``$XDG_STATE_HOME/remediate`` (default
``~/.local/state/remediate``) for backups, the audit log, locks, escalations and the lab.
Windows: platformdirs' folders with no author level, ``%APPDATA%\\remediate`` (roaming: the
profiles follow the admin) and ``%LOCALAPPDATA%\\remediate`` (state stays on the machine that
made the change), unless the mapping sets ``XDG_CONFIG_HOME`` / ``XDG_STATE_HOME``
explicitly (the demo sends its records to a directory of its own that way, on every
platform). platformdirs reads only the process environment and, on Windows, the shell's
known folders, so the POSIX rules are applied here to the mapping the caller gives.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from remediate.core.files import windows

APP = "remediate"


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Profiles: ``$XDG_CONFIG_HOME/remediate`` or ``%APPDATA%\\remediate``."""
    if windows() and not _given(environ, "XDG_CONFIG_HOME"):
        # lazy: Windows only
        from platformdirs.windows import Windows  # platformdirs' own choice on Windows

        return Path(Windows(APP, appauthor=False, roaming=True).user_config_dir)
    return _xdg(environ, "XDG_CONFIG_HOME", ".config")


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Backups, audit log, locks, escalations, lab: ``$XDG_STATE_HOME/remediate`` or
    ``%LOCALAPPDATA%\\remediate``."""
    if windows() and not _given(environ, "XDG_STATE_HOME"):
        # lazy: Windows only
        from platformdirs.windows import Windows

        return Path(Windows(APP, appauthor=False).user_state_dir)
    return _xdg(environ, "XDG_STATE_HOME", ".local/state")


def _given(environ: Mapping[str, str] | None, variable: str) -> bool:
    return bool((os.environ if environ is None else environ).get(variable))


def _xdg(environ: Mapping[str, str] | None, variable: str, default: str) -> Path:
    environ = os.environ if environ is None else environ
    base = environ.get(variable) or str(Path(environ.get("HOME", "~")) / default)
    return Path(base).expanduser() / APP
