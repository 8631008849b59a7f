"""WinRM message encryption (MS-WSMV 2.2.9.1, "Encrypted Message Types"), server side.

After an NTLM, Kerberos or SPNEGO login over plain http, WinRM carries every SOAP message as a
``multipart/encrypted`` body: a part naming the protocol and the plaintext length, then an
``application/octet-stream`` part holding a 4-byte little-endian signature length, the
signature and the sealed message, closed by the boundary with ``--``. The sealing itself is
the security context's (GSS_WrapEx / NTLM seal, pyspnego's ``wrap_winrm``/``unwrap_winrm``).

The parser is the lab's own (from the spec and shared/exchange-notes.md, not a client's code):
one linear pass over a body whose size the HTTP layer has already capped. Exchange writes its
boundary as ``-- Encrypted Boundary`` (a space after the dashes); that form is accepted too.
"""

from __future__ import annotations

import re
import struct
from typing import Any, Protocol

BOUNDARY = "Encrypted Boundary"
SPNEGO = "application/HTTP-SPNEGO-session-encrypted"
KERBEROS = "application/HTTP-Kerberos-session-encrypted"
_ORIGINAL = "application/soap+xml;charset=UTF-8"
# "--Encrypted Boundary" or Exchange's "-- Encrypted Boundary", at the start of a line.
_SEPARATOR = re.compile(rb"--[ \t]?Encrypted Boundary(--)?\r\n")
_LENGTH = re.compile(rb"Length=(\d{1,9})\s*$")


class EncryptionError(ValueError):
    """The body is not a well-formed encrypted message for this context."""


class WrappingContext(Protocol):
    def wrap_winrm(self, data: bytes) -> Any: ...
    def unwrap_winrm(self, header: bytes, data: bytes) -> bytes: ...


def content_type(protocol: str) -> str:
    return f'multipart/encrypted;protocol="{protocol}";boundary="{BOUNDARY}"'


def is_encrypted(content_type_header: str | None, protocol: str) -> bool:
    """The request's Content-Type announces this connection's encryption protocol."""
    value = (content_type_header or "").strip()
    if not value.lower().startswith("multipart/encrypted"):
        return False
    params = {}
    for item in value.split(";")[1:]:
        key, _, raw = item.partition("=")
        params[key.strip().lower()] = raw.strip().strip('"')
    return (
        params.get("protocol", "").lower() == protocol.lower()
        and params.get("boundary", "").strip() == BOUNDARY
    )


def unwrap(context: WrappingContext, body: bytes, protocol: str) -> bytes:
    """The SOAP message inside ``body`` (one encrypted part, as WinRM sends below 16 KiB and
    pypsrp always sends)."""
    pieces = _SEPARATOR.split(body)
    # split() with one group yields: text, group, text, group, ...; keep the texts.
    texts = pieces[0::2]
    closers = pieces[1::2]
    if len(texts) != 4 or texts[0] or texts[3] or closers != [None, None, b"--"]:
        raise EncryptionError("not one multipart/encrypted message")
    header, payload = texts[1], texts[2]
    lines = [line.strip() for line in header.split(b"\r\n") if line.strip()]
    if len(lines) != 2 or lines[0].lower() != f"Content-Type: {protocol}".lower().encode():
        raise EncryptionError("the first part does not name this connection's protocol")
    match = _LENGTH.search(lines[1])
    if not lines[1].lower().startswith(b"originalcontent:") or match is None:
        raise EncryptionError("the first part has no OriginalContent length")
    expected = int(match.group(1))
    prefix = b"\tContent-Type: application/octet-stream\r\n"
    if not payload.startswith(prefix):
        raise EncryptionError("the second part is not application/octet-stream")
    sealed = payload[len(prefix) :]
    if len(sealed) < 4:
        raise EncryptionError("the encrypted part is empty")
    (signature_length,) = struct.unpack("<I", sealed[:4])
    if signature_length > len(sealed) - 4:
        raise EncryptionError("the signature length is larger than the part")
    signature = sealed[4 : 4 + signature_length]
    try:
        message = context.unwrap_winrm(signature, sealed[4 + signature_length :])
    except Exception as exc:  # any failure of the security layer: tampered or foreign data
        raise EncryptionError(f"the message does not decrypt ({type(exc).__name__})") from None
    if len(message) != expected:
        raise EncryptionError("the decrypted length differs from OriginalContent")
    return message


def wrap(context: WrappingContext, message: bytes, protocol: str) -> bytes:
    """``message`` sealed as one multipart/encrypted body."""
    signature, sealed, padding = context.wrap_winrm(message)
    head = (
        f"--{BOUNDARY}\r\n"
        f"\tContent-Type: {protocol}\r\n"
        f"\tOriginalContent: type={_ORIGINAL};Length={len(message) + padding}\r\n"
        f"--{BOUNDARY}\r\n"
        "\tContent-Type: application/octet-stream\r\n"
    ).encode()
    tail = f"--{BOUNDARY}--\r\n".encode()
    return head + struct.pack("<I", len(signature)) + signature + sealed + tail
