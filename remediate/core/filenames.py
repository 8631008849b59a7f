"""File-name parts made from names that came from outside (connector names): backups, undo
and dry-run scripts, escalation bundles.

Unicode letters and digits are kept (a Chinese or German connector keeps its name), everything
else becomes ``-``: so none of Windows' reserved characters ``<>:"/\\|?*``, no control or
format character (bidi overrides included), no path separator, no leading or trailing dot or
space. A part that is a DOS device name (CON, PRN, AUX, NUL, COM0-9, LPT0-9 and their
superscript-digit forms, which Windows reserves whatever the extension) gets a ``_``. The part
is bounded in UTF-8 bytes, which also bounds it in the UTF-16 units NTFS counts (never more
units than bytes); a cut name gets a short hash of the whole name so two long names that
share a start still differ. Sources: Microsoft's "Naming Files, Paths, and Namespaces"
(learn.microsoft.com/windows/win32/fileio/naming-a-file), ext4's 255-byte name limit.
"""

from __future__ import annotations

import hashlib
import unicodedata

# Ample room for the prefix and suffix callers add ("20261201T093012123456Z-", "-undo.ps1")
# inside the 255 bytes of one ext4 name / 255 UTF-16 units of one NTFS name.
MAX_PART_BYTES = 120
_DEVICE_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"{port}{digit}" for port in ("COM", "LPT") for digit in "0123456789\u00b9\u00b2\u00b3"}
)


def file_name_part(name: str, fallback: str = "connector", max_bytes: int = MAX_PART_BYTES) -> str:
    """``name`` as one safe piece of a file name (see the module docstring); ``fallback``
    when nothing of it is left (a name of punctuation only)."""
    text = unicodedata.normalize("NFC", name)
    out: list[str] = []
    for ch in text:
        keep = ch.isalnum() or (unicodedata.category(ch).startswith("M") and bool(out))
        if keep:
            out.append(ch)
        elif out and out[-1] != "-":
            out.append("-")
    part = "".join(out).strip("-")
    if not part:
        return fallback
    encoded = part.encode("utf-8")
    if len(encoded) > max_bytes:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        head = encoded[: max_bytes - len(digest) - 1].decode("utf-8", "ignore")
        while head and unicodedata.category(head[-1]).startswith("M"):
            head = head[:-1]  # no combining mark left without its base letter's ending
        part = f"{head.rstrip('-')}-{digest}"
    if part.upper() in _DEVICE_NAMES:
        part += "_"
    return part
