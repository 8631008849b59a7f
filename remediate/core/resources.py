"""Where the data files live: ``playbooks/`` and ``ps_templates/``.

In a checkout (or an editable install) they sit beside the package; an installed wheel
carries them inside the package as ``remediate/_data/{playbooks,ps_templates}`` (see
pyproject.toml). The wheel's copy wins when both exist.
"""

from __future__ import annotations

from pathlib import Path

from remediate.core.errors import TemplateError

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def data_dir(name: str) -> Path:
    """The directory ``name`` ("playbooks" or "ps_templates"), installed or from a checkout."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise TemplateError(
        f"the {name} directory was not found next to the remediate package ({_PACKAGE_DIR})",
        hint="reinstall remediate; the wheel carries it as remediate/_data/" + name,
    )


def playbooks_dir() -> Path:
    return data_dir("playbooks")


def templates_dir() -> Path:
    return data_dir("ps_templates")
