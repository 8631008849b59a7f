"""Event Viewer's own files (.evtx, "Save All Events As"), read with the `evtx` package (the
optional extra ``remediate[evtx]``: Rust-backed, wheels for Windows, macOS and Linux).

Each record is rendered by the package as the XML wevtutil writes, so the insertion strings
reach the one event model through ``events.parse_xml``, language-neutral like the XML path.
A saved Application log holds every source's events: only MSExchangeTransport's are kept
(the rest would be a flood of "not handled" lines), and a file without any says so.
"""

from __future__ import annotations

import io

from remediate.core.errors import UsageError

MAGIC = b"ElfFile\x00"  # the file header's signature (libyal, "Windows XML Event Log (EVTX)")
# Event Viewer's default maximum for the Application log is 20 MiB; room for larger ones.
MAX_EVTX_BYTES = 256 * 1024 * 1024
INSTALL_HINT = 'install the extra: pip install "remediate[evtx]" (pipx: pipx inject remediate evtx)'
_PROVIDER = 'Name="MSExchangeTransport"'


def evtx_as_xml(raw: bytes, what: str, limit: int) -> str:
    """The MSExchangeTransport events of an .evtx file as <Event> XML, at most ``limit``
    characters of it."""
    try:
        # lazy: the optional evtx extra: only .evtx files need it
        from evtx import PyEvtxParser
    except ImportError:
        raise UsageError(
            f"{what}: reading .evtx files needs the evtx package", hint=INSTALL_HINT
        ) from None
    kept: list[str] = []
    size = 0
    seen = 0
    try:
        parser = PyEvtxParser(io.BytesIO(raw), number_of_threads=1)
        for record in parser.records():
            seen += 1
            xml = str(record["data"]) if record else ""
            if _PROVIDER not in xml:
                continue
            event = xml[xml.find("<Event") :]
            size += len(event)
            if size > limit:
                raise UsageError(
                    f"{what}: more than {limit // (1024 * 1024)} MiB of MSExchangeTransport "
                    "events; not read",
                    hint="save only the days in question (Filter Current Log, then Save "
                    "Filtered Log File As)",
                )
            kept.append(event)
    except (RuntimeError, OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise UsageError(f"{what}: not a readable .evtx file ({reason})") from None
    if not kept:
        raise UsageError(
            f"{what}: {seen} event(s) in the file, none from MSExchangeTransport",
            hint="save the Application log of the Exchange server that logged 2016 or 2002",
        )
    return "\n".join(kept)
