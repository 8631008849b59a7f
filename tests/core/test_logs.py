"""The --debug log redaction: known passwords, Authorization headers and tokens, in a
message and in a traceback, written through the sanitiser to stderr."""

from __future__ import annotations

import io
import logging

from remediate.core.env import Environment
from remediate.core.logs import configure, known_secret, redact

NTLM = "TlRMTVNTUAADAAAAGAAYAEgAAAAYABgAYAAAAA4ADgB4AAAA"
KERBEROS = "YIIGhgYJKoZIhvcSAQICAQBuggZ1MIIGcaADAgEFoQMCAQ6i"


def test_headers_tokens_and_known_passwords_are_redacted() -> None:
    known_secret("Pw-Canary-981")
    line = (
        f"headers {{'Authorization': 'Negotiate {KERBEROS}', 'WWW-Authenticate': 'NTLM {NTLM}'}} "
        "Authorization: Basic YWRtaW46UHctQ2FuYXJ5LTk4MQ==\npassword Pw-Canary-981"
    )
    out = redact(line)
    for secret in (KERBEROS, NTLM, "YWRtaW46UHctQ2FuYXJ5LTk4MQ==", "Pw-Canary-981"):
        assert secret not in out
    assert out.count("<redacted>") == 3 and "<password redacted>" in out


def test_debug_logging_reaches_stderr_redacted_with_tracebacks() -> None:
    err = io.StringIO()
    env = Environment(stdin=io.StringIO(), stdout=io.StringIO(), stderr=err)
    known_secret("Tb-Secret-55")
    configure(env, verbose=False, debug=True)
    log = logging.getLogger("pypsrp.wsman")
    try:
        try:
            raise ValueError("login with Tb-Secret-55 failed\x1b[2J")
        except ValueError:
            log.debug("sending %s", f"Authorization: NTLM {NTLM}", exc_info=True)
    finally:
        for name in ("remediate", "pypsrp", "psrpcore", "spnego", "urllib3", "requests_credssp"):
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).setLevel(logging.NOTSET)
            logging.getLogger(name).propagate = True
    text = err.getvalue()
    assert "DEBUG pypsrp.wsman: sending Authorization: <redacted>" in text
    assert "Traceback" in text and "ValueError: login with <password redacted> failed?[2J" in text
    assert "Tb-Secret-55" not in text and NTLM not in text and "\x1b" not in text


def test_verbose_is_remediates_records_and_the_libraries_warnings() -> None:
    """README: --verbose logs remediate's records at INFO; pypsrp's INFO lines (one per pool
    opened, per key exchange) only with --debug."""
    err = io.StringIO()
    env = Environment(stdin=io.StringIO(), stdout=io.StringIO(), stderr=err)
    configure(env, verbose=True, debug=False)
    try:
        logging.getLogger("remediate.bulk.runner").info("the shells run in 2 worker process(es)")
        logging.getLogger("pypsrp.powershell").info("Opening a new Runspace Pool")
        logging.getLogger("urllib3.connectionpool").warning("Retrying after a reset")
    finally:
        for name in ("remediate", "pypsrp", "psrpcore", "spnego", "urllib3", "requests_credssp"):
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).setLevel(logging.NOTSET)
            logging.getLogger(name).propagate = True
    lines = err.getvalue().splitlines()
    assert lines == [
        "INFO remediate.bulk.runner: the shells run in 2 worker process(es)",
        "WARNING urllib3.connectionpool: Retrying after a reset",
    ]
