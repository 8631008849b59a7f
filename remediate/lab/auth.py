"""How the lab logs clients in, like IIS/WinRM in front of Exchange's ``/PowerShell``.

- ``basic``: ``WWW-Authenticate: Basic realm="WSMAN"``, the password checked in constant time.
- ``ntlm``: offers ``Negotiate``; NTLM (raw or inside SPNEGO) against the users of
  ``NTLM_USER_FILE`` (pyspnego's acceptor reads that process-wide variable).
- ``negotiate``: offers ``Negotiate``; SPNEGO with Kerberos (keytab from ``KRB5_KTNAME``) or
  NTLM.
- ``kerberos``: offers ``Kerberos``; Kerberos only, as the /PowerShell virtual directory is
  set up by default (shared/exchange-notes.md, "Authentication on /PowerShell").

The handshake runs per TCP connection (IIS's connection-based authentication): the tokens go
in ``Authorization``/``WWW-Authenticate`` headers, 401 while it continues, and the final answer
carries the acceptor's mutual-authentication token. After it, over plain http, every body
must be WinRM-encrypted with that connection's context (``winrm_crypt``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from remediate.core.errors import UsageError
from remediate.lab import winrm_crypt

BASIC_OFFER = 'Basic realm="WSMAN"'
KERBEROS_INSTALL_HINT = (
    "pip install 'remediate[kerberos]' (Debian: apt-get install libkrb5-dev first); "
    "--auth ntlm needs no extra package"
)
_NTLM_SIGNATURE = b"NTLMSSP\x00"
# pyspnego's NTLM acceptor reads NTLM_USER_FILE from the process environment at the moment it
# checks a response: labs sharing a process take turns with their own file.
_NTLM_FILE_LOCK = threading.Lock()


class AuthMode(StrEnum):
    BASIC = "basic"
    NTLM = "ntlm"
    NEGOTIATE = "negotiate"
    KERBEROS = "kerberos"

    def __str__(self) -> str:
        return self.value

    @property
    def offers(self) -> tuple[str, ...]:
        """The WWW-Authenticate values of the first 401."""
        return {
            AuthMode.BASIC: (BASIC_OFFER,),
            AuthMode.NTLM: ("Negotiate",),
            AuthMode.NEGOTIATE: ("Negotiate",),
            AuthMode.KERBEROS: ("Kerberos",),
        }[self]

    @property
    def uses_tokens(self) -> bool:
        return self is not AuthMode.BASIC

    @property
    def needs_gssapi(self) -> bool:
        return self in (AuthMode.KERBEROS, AuthMode.NEGOTIATE)


def check_kerberos_available(mode: AuthMode) -> None:
    """Kerberos and Negotiate need pyspnego's GSSAPI support (the kerberos extra); Kerberos
    also needs the service keys (Negotiate can still take NTLM without them)."""
    if not mode.needs_gssapi:
        return
    try:
        # lazy: the optional kerberos extra (pyspnego, gssapi, krb5): absent is not an error
        import gssapi
        import krb5  # noqa: F401
    except ImportError:
        raise UsageError(
            f"the lab's --auth {mode} needs the Kerberos libraries (Python gssapi and krb5)",
            hint=KERBEROS_INSTALL_HINT,
        ) from None
    if mode is AuthMode.KERBEROS:
        try:
            gssapi.Credentials(usage="accept")
        except gssapi.exceptions.GSSError:
            where = os.environ.get("KRB5_KTNAME") or "the default keytab"
            raise UsageError(
                f"the lab's --auth kerberos has no usable service keys in {where}",
                hint="pass --keytab FILE holding host/NAME and HTTP/NAME keys (kadmin ktadd)",
            ) from None


def write_ntlm_user_file(path: Path, username: str, password: str) -> None:
    """One ``DOMAIN:user:password`` line per name form a client may send for the admin:
    ``NETBIOS\\user``, ``DNS.DOMAIN\\user``, the UPN, and the bare user name."""
    if any(c in password for c in ":\r\n") or any(c in username for c in ":\r\n\\"):
        raise UsageError("the lab's NTLM users cannot have ':' or line breaks in name or password")
    user, _, domain = username.partition("@")
    lines = [f":{user}:{password}"]
    if domain:
        lines = [
            f"{domain.split('.')[0].upper()}:{user}:{password}",
            f"{domain.upper()}:{user}:{password}",
            f":{username}:{password}",
            *lines,
        ]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


@contextmanager
def _ntlm_user_file(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    with _NTLM_FILE_LOCK:
        previous = os.environ.get("NTLM_USER_FILE")
        os.environ["NTLM_USER_FILE"] = str(path)
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("NTLM_USER_FILE", None)
            else:
                os.environ["NTLM_USER_FILE"] = previous


@dataclass
class Outcome:
    """What one Authorization header led to."""

    authorized: bool
    headers: dict[str, str]  # WWW-Authenticate to send (offers, a continuation, mutual auth)


@dataclass(frozen=True)
class AuthConfig:
    """The lab's login settings, shared by every connection."""

    mode: AuthMode
    basic_token: bytes = b""  # base64 of "user:password" for Basic
    ntlm_user_file: Path | None = None

    @classmethod
    def create(cls, mode: AuthMode, username: str, password: str, workdir: Path) -> AuthConfig:
        check_kerberos_available(mode)
        basic = base64.b64encode(f"{username}:{password}".encode())
        user_file = None
        if mode in (AuthMode.NTLM, AuthMode.NEGOTIATE):
            user_file = workdir / "ntlm-users"
            write_ntlm_user_file(user_file, username, password)
        return cls(mode, basic, user_file)

    @classmethod
    def basic(cls, username: str, password: str) -> AuthConfig:
        return cls(AuthMode.BASIC, base64.b64encode(f"{username}:{password}".encode()))

    def offers(self) -> dict[str, str]:
        return {"WWW-Authenticate": ", ".join(self.mode.offers)}


class ConnectionLogin:
    """The login state of one TCP connection."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self._context: Any = None
        self._scheme = ""
        self.authenticated = False
        self.principal: str | None = None

    @property
    def protocol(self) -> str:
        """The encryption label that follows the scheme the client logged in with."""
        return winrm_crypt.KERBEROS if self._scheme == "kerberos" else winrm_crypt.SPNEGO

    def reset(self) -> None:
        self._context = None
        self._scheme = ""
        self.authenticated = False
        self.principal = None

    def check(self, header: str | None) -> Outcome:
        """Judge the request's Authorization header (None: no header)."""
        mode = self.config.mode
        if not mode.uses_tokens:
            ok = self._basic_ok(header)
            return Outcome(ok, {} if ok else self.config.offers())
        if header is None:
            if self.authenticated:
                return Outcome(True, {})
            return Outcome(False, self.config.offers())
        scheme, _, token_text = header.strip().partition(" ")
        scheme = scheme.lower()
        allowed = {offer.split(" ", 1)[0].lower() for offer in mode.offers}
        try:
            token = base64.b64decode(token_text.strip(), validate=True)
        except (binascii.Error, ValueError):
            token = b""
        if scheme not in allowed or not token:
            self.reset()
            return Outcome(False, self.config.offers())
        return self._step(scheme, token)

    def _basic_ok(self, header: str | None) -> bool:
        if not header or not header.lower().startswith("basic "):
            return False
        token = header[6:].strip().encode("ascii", "replace")
        return hmac.compare_digest(token, self.config.basic_token)

    def _step(self, scheme: str, token: bytes) -> Outcome:
        if self._context is None or self._context.complete or self._scheme != scheme:
            self.reset()
            self._scheme = scheme
            try:
                self._context = self._new_context(token)
            except Exception:  # no usable keytab, an unsupported mechanism
                self.reset()
                return Outcome(False, self.config.offers())
        try:
            with _ntlm_user_file(self.config.ntlm_user_file):
                reply = self._context.step(token)
        except Exception:  # a wrong password, a ticket for another service, a bad token
            self.reset()
            return Outcome(False, self.config.offers())
        name = "Kerberos" if scheme == "kerberos" else "Negotiate"
        headers = {}
        if reply:
            headers["WWW-Authenticate"] = f"{name} {base64.b64encode(reply).decode()}"
        if not self._context.complete:
            return Outcome(False, headers or self.config.offers())
        self.authenticated = True
        try:
            self.principal = self._context.client_principal
        except Exception:  # the NTLM acceptor may not know it
            self.principal = None
        return Outcome(True, headers)

    def _new_context(self, token: bytes) -> Any:
        # lazy: the optional kerberos extra (pyspnego, gssapi, krb5): absent is not an error
        import spnego

        mode = self.config.mode
        if mode is AuthMode.KERBEROS:
            protocol = "kerberos"
        elif mode is AuthMode.NTLM and token.startswith(_NTLM_SIGNATURE):
            protocol = "ntlm"
        else:
            protocol = "negotiate"
        with _ntlm_user_file(self.config.ntlm_user_file):
            return spnego.server(
                service="host", protocol=protocol, options=spnego.NegotiateOptions.wrapping_winrm
            )

    # --- message encryption -----------------------------------------------------------------

    def unwrap(self, body: bytes, content_type: str | None) -> bytes:
        if not winrm_crypt.is_encrypted(content_type, self.protocol):
            raise winrm_crypt.EncryptionError("the body is not multipart/encrypted")
        return winrm_crypt.unwrap(self._context, body, self.protocol)

    def wrap(self, message: bytes) -> tuple[str, bytes]:
        return winrm_crypt.content_type(self.protocol), winrm_crypt.wrap(
            self._context, message, self.protocol
        )
