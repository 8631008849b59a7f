"""The Send protocol log the lab's transport writes while it delivers (verbose connectors).

Exchange's format (Microsoft Learn, "Protocol logging" for Exchange Server: the fields of
each line, the one-character events ``+`` connect, ``-`` disconnect, ``>`` sent, ``<``
received, ``*`` information; published SMTP Send logs of Exchange 2013/2016 for the header
and the lines' shape)::

    #Software: Microsoft Exchange Server
    #Version: 15.0.0.0
    #Log-type: SMTP Send Protocol Log
    #Date: 2019-03-21T13:01:06.525Z
    #Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,
             remote-endpoint,event,data,context      (one line in the file)

One file per server and day, ``SEND<yyyymmdd>-1.LOG``, under the server's
SendProtocolLogPath (Get-TransportService); the lab keeps EX01's under
``<workdir>/protocol-log/EX01`` and serves it at Exchange's default Windows path. Lines are
appended and flushed one by one, as the transport writes them. The AUTH LOGIN exchange is
written with the credentials masked; message content is never written.
"""

from __future__ import annotations

import csv
import datetime
import io
import itertools
import threading
from pathlib import Path, PureWindowsPath

SEND_LOG_PATH = (
    r"C:\Program Files\Microsoft\Exchange Server\V15\TransportRoles\Logs\Hub\ProtocolLog\SmtpSend"
)
FIELDS = (
    "date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,"
    "event,data,context"
)
HEADER = (
    "#Software: Microsoft Exchange Server",
    "#Version: 15.0.0.0",
    "#Log-type: SMTP Send Protocol Log",
)
MASK = "****"


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class ProtocolLog:
    """The protocol-log directories of the lab's servers. Thread-safe."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        # Exchange's session ids are 16 hex digits that count up (08D6A8D416004F77, ...).
        self._ids = itertools.count(0x08DE000000000000 + (int(_now().timestamp()) << 12))

    def directory(self, server: str) -> Path:
        return self.root / server.split(".")[0].upper()

    def session(self, server: str, connector: str, remote: str) -> SessionLog:
        return SessionLog(self, server, connector, f"{next(self._ids):016X}", remote)

    def write(self, server: str, fields: list[str]) -> None:
        moment = _now()
        folder = self.directory(server)
        path = folder / f"SEND{moment:%Y%m%d}-1.LOG"
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerow(fields)
        with self._lock:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            new = not path.exists()
            with open(path, "a", encoding="utf-8", newline="") as handle:
                if new:
                    lines = [*HEADER, f"#Date: {_stamp(moment)}", f"#Fields: {FIELDS}"]
                    handle.write("\r\n".join(lines) + "\r\n")
                handle.write(out.getvalue())
                handle.flush()


class SessionLog:
    """One SMTP session's lines, numbered from 0 (``sequence-number``)."""

    def __init__(
        self, log: ProtocolLog, server: str, connector: str, session_id: str, remote: str
    ) -> None:
        self._log = log
        self.server = server
        self.connector = connector
        self.session_id = session_id
        self.remote = remote
        self.local = ""
        self._sequence = itertools.count()

    def event(self, kind: str, data: str = "", context: str = "") -> None:
        self._log.write(
            self.server,
            [
                _stamp(_now()),
                self.connector,
                self.session_id,
                str(next(self._sequence)),
                self.local,
                self.remote,
                kind,
                data,
                context,
            ],
        )

    def sent(self, line: str) -> None:
        self.event(">", line)

    def received(self, line: str) -> None:
        self.event("<", line)

    def info(self, context: str, data: str = "") -> None:
        self.event("*", data, context)


def lab_path(log: ProtocolLog, server: str, windows_path: str) -> Path | None:
    """The lab file or directory behind a Windows path under SendProtocolLogPath on
    ``server``; None for any other path (the lab serves nothing else from its disk)."""
    try:
        wanted = PureWindowsPath(windows_path)
    except (TypeError, ValueError):
        return None
    base = PureWindowsPath(SEND_LOG_PATH)
    parts = [p.lower() for p in wanted.parts]
    prefix = [p.lower() for p in base.parts]
    if parts[: len(prefix)] != prefix or any(p in ("..", ".") for p in parts):
        return None
    rest = wanted.parts[len(prefix) :]
    if len(rest) > 1 or any("/" in p or "\x00" in p for p in rest):
        return None  # the directory is flat
    folder = log.directory(server)
    if not rest:
        return folder
    for child in folder.iterdir() if folder.is_dir() else ():
        if child.name.lower() == rest[0].lower() and child.is_file():
            return child
    return folder / rest[0]
