"""A loopback TCP relay that records every byte between a client and the lab.

It is the independent witness for "every request after the login is encrypted": the tests
read the HTTP messages off the recorded streams themselves (Content-Length framing, as both
sides use) and look for plaintext SOAP anywhere after the login.
"""

from __future__ import annotations

import base64
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class Message:
    start_line: str
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def status(self) -> int:
        return int(self.start_line.split(" ", 2)[1])

    def token(self, name: str) -> bytes | None:
        """The base64 token of an Authorization / WWW-Authenticate header, if any."""
        value = self.header(name)
        if not value or " " not in value.strip():
            return None
        return base64.b64decode(value.strip().split(" ", 1)[1].split(",")[0])


def parse_messages(data: bytes) -> list[Message]:
    messages = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        length = int(headers.get("content-length", ["0"])[0])
        messages.append(Message(lines[0], headers, rest[:length]))
        data = rest[length:]
    return messages


@dataclass
class Connection:
    upstream: bytearray = field(default_factory=bytearray)  # client -> lab
    downstream: bytearray = field(default_factory=bytearray)  # lab -> client

    def exchanges(self) -> list[tuple[Message, Message | None]]:
        requests = parse_messages(bytes(self.upstream))
        responses = parse_messages(bytes(self.downstream))
        return [(r, responses[i] if i < len(responses) else None) for i, r in enumerate(requests)]


class Recorder:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.connections: list[Connection] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []  # closed by stop(), whatever the pumps did
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        for sock in self._sockets:
            sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, upstream]
            record = Connection()
            self.connections.append(record)
            for source, sink, buffer in (
                (client, upstream, record.upstream),
                (upstream, client, record.downstream),
            ):
                threading.Thread(
                    target=_pump, args=(source, sink, buffer), daemon=True
                ).start()


def _pump(source: socket.socket, sink: socket.socket, buffer: bytearray) -> None:
    try:
        while chunk := source.recv(65536):
            buffer.extend(chunk)
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        # Either direction ending ends the connection: both sockets are shut down and closed
        # (the other pump's recv then fails and it ends too; a second close is harmless).
        for sock in (sink, source):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
