"""``--verbose`` / ``--debug``: Python logging (remediate's, pypsrp's, spnego's, urllib3's)
to stderr, with every secret taken out before a line is written.

What is removed: every password this process has read (``known_secret`` is called where a
password enters: the keyring, a --password-stdin line, a prompt), the value of Authorization
/ WWW-Authenticate headers (Basic, NTLM, Negotiate/Kerberos tokens), and every long base64
run (NTLM/SPNEGO tokens and encrypted WinRM payloads appear as such). The redaction runs on
the whole formatted record, a traceback included; the line then goes through the one
terminal sanitiser like everything else printed.
"""

from __future__ import annotations

import logging
import re
import threading

from remediate.core.env import Environment

_SECRETS: set[str] = set()
_LOCK = threading.Lock()
_HEADER = re.compile(
    r"(?i)\b((?:proxy-)?authorization|www-authenticate|authentication-info)(['\"]?\s*[:=]\s*['\"]?)"
    r"[^'\"\r\n,}]*"
)
_BASE64 = re.compile(r"[A-Za-z0-9+/]{32,}={0,2}")
LOGGERS = ("remediate", "pypsrp", "psrpcore", "spnego", "urllib3", "requests_credssp")


def known_secret(value: str | None) -> str | None:
    """Remember ``value`` (a password) so no log line shows it; returns it unchanged."""
    if value:
        with _LOCK:
            _SECRETS.add(value)
    return value


def redact(text: str) -> str:
    with _LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, "<password redacted>")
    text = _HEADER.sub(lambda m: f"{m[1]}{m[2]}<redacted>", text)
    return _BASE64.sub(lambda m: f"<{len(m[0])} base64 characters redacted>", text)


class _Handler(logging.Handler):
    """Formats, redacts, and writes through ``Environment.err`` (the sanitiser)."""

    def __init__(self, env: Environment) -> None:
        super().__init__()
        self.env = env
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = redact(self.format(record))
        except Exception:  # a log line must never end the run
            text = f"{record.levelname} {record.name}: (a log record that could not be shown)"
        for line in text.split("\n"):
            self.env.err(line)


def configure(env: Environment, *, verbose: bool, debug: bool) -> None:
    """--verbose: remediate's records at INFO (the libraries' warnings only); --debug:
    everything at DEBUG; nothing (the default) otherwise."""
    if not (verbose or debug):
        return
    handler = _Handler(env)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if debug:
            logger.setLevel(logging.DEBUG)
        else:
            logger.setLevel(logging.INFO if name == "remediate" else logging.WARNING)
        logger.addHandler(handler)
        logger.propagate = False
