"""Kerberos and Negotiate logins: the libraries they need, principal names, tickets, failures.

pyspnego does Kerberos through the Python ``gssapi`` and ``krb5`` packages (the
``remediate[kerberos]`` extra; on Linux they build against libkrb5-dev). On Windows pyspnego
uses SSPI and needs neither. NTLM is pure Python and needs no extra.

Kerberos failures come back from pyspnego as ``krb5``/``gssapi``/``spnego`` exceptions, not as
HTTP 401: ``kerberos_failure`` turns the MIT error codes (com_err table krb5, RFC 4120 7.5.9)
into one line naming the cause.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from remediate.core.errors import ConnectionFailed, LoginRefused, RemediateError, SecretStoreError
from remediate.remote.exception_chain import causes, first_line

if TYPE_CHECKING:
    from remediate.remote.connections import Connection

GSSAPI_AUTHS = ("kerberos", "negotiate")
INSTALL_HINT = (
    "pip install 'remediate[kerberos]' (on Debian first: apt-get install libkrb5-dev); "
    "--auth ntlm works without it"
)

# MIT krb5 error codes (ERROR_TABLE_BASE_krb5 = -1765328384, RFC 4120 error numbers added).
_BASE = -1765328384
C_PRINCIPAL_UNKNOWN = _BASE + 6
S_PRINCIPAL_UNKNOWN = _BASE + 7
CLIENT_REVOKED = _BASE + 18
KEY_EXPIRED = _BASE + 23
PREAUTH_FAILED = _BASE + 24
BAD_INTEGRITY = _BASE + 31
CLOCK_SKEW = _BASE + 37
REALM_UNKNOWN = -1765328230  # "Cannot find KDC for requested realm"
KDC_UNREACHABLE = -1765328228  # "Cannot contact any KDC for requested realm"
NO_CREDENTIALS_CACHE = _BASE + 141  # "No credentials cache found" (KRB5_FCC_NOFILE)
GSS_NO_CRED = 458752  # GSS_S_NO_CRED major status
GSS_CREDENTIALS_EXPIRED = 720896  # GSS_S_CREDENTIALS_EXPIRED


def uses_gssapi(auth: object) -> bool:
    return str(auth) in GSSAPI_AUTHS


def gssapi_missing() -> bool:
    try:
        # lazy: the optional kerberos extra (pyspnego, gssapi, krb5): absent is not an error
        import gssapi  # noqa: F401
        import krb5  # noqa: F401
    except ImportError:
        return os.name != "nt"  # SSPI on Windows
    return False


def require_gssapi(connection: Connection) -> None:
    """Before anything is sent: --auth kerberos/negotiate without the libraries."""
    if uses_gssapi(connection.auth) and gssapi_missing():
        raise ConnectionFailed(
            f"--auth {connection.auth} needs the Kerberos libraries (Python gssapi and krb5), "
            "which are not installed",
            hint=INSTALL_HINT,
        )


def default_realm() -> str | None:
    try:
        # lazy: the optional kerberos extra (pyspnego, gssapi, krb5): absent is not an error
        import krb5

        realm = krb5.get_default_realm(krb5.init_context())
    except Exception:  # no krb5 package, or no default_realm in krb5.conf
        return None
    return realm.decode("utf-8", "replace") if isinstance(realm, bytes) else str(realm)


def principal_name(username: str) -> str:
    """The Kerberos principal for an admin name as Windows admins write it.

    MIT's parser reads ``\\`` as an escape (``LAB\\administrator`` became
    ``LABadministrator@LAB.TEST``), and realms are upper case. So ``DOMAIN\\user`` becomes
    ``user@REALM``: the DOMAIN itself when it is a DNS name, else the default realm of
    krb5.conf (a NetBIOS name is not a realm); ``user@domain`` gets its realm upper-cased.
    """
    domain, backslash, user = username.partition("\\")
    if backslash:
        if "." in domain:
            return f"{user}@{domain.upper()}"
        realm = default_realm()
        return f"{user}@{realm}" if realm else user
    user, at, realm = username.rpartition("@")
    if at and user:
        return f"{user}@{realm.upper()}"
    return username


def has_ticket(principal: str | None) -> bool:
    """A valid ticket for ``principal`` (or the default one) in the credential cache."""
    try:
        # lazy: the optional kerberos extra (pyspnego, gssapi, krb5): absent is not an error
        import gssapi

        name = None
        if principal:
            name = gssapi.Name(principal, gssapi.NameType.kerberos_principal)
        credentials = gssapi.Credentials(name=name, usage="initiate")
        return int(credentials.lifetime or 0) > 0
    except Exception:  # no library, no cache, no ticket for that name, expired
        return False


# --- failures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Code:
    krb5: int | None = None  # a krb5 error code (signed)
    gss_major: int | None = None


def _codes(exc: BaseException) -> list[_Code]:
    found: list[_Code] = []
    for item in causes(exc):
        err_code = getattr(item, "err_code", None)
        if isinstance(err_code, int):
            found.append(_Code(krb5=err_code))
        minor = getattr(item, "min_code", None)
        major = getattr(item, "maj_code", None)
        if isinstance(minor, int) or isinstance(major, int):
            signed = minor - 2**32 if isinstance(minor, int) and minor >= 2**31 else minor
            found.append(_Code(krb5=signed or None, gss_major=major))
        base = getattr(item, "base_error", None)
        if isinstance(base, BaseException) and base is not item:
            found.extend(_codes(base))
    return found


def _is_kerberos_exception(exc: BaseException) -> bool:
    return any(
        type(item).__module__.split(".")[0] in ("krb5", "gssapi", "spnego") for item in causes(exc)
    )


def kerberos_failure(exc: BaseException, connection: Connection) -> RemediateError | None:
    """One line for a Kerberos/SPNEGO failure (None: not one)."""
    if not _is_kerberos_exception(exc) or not uses_gssapi(connection.auth):
        return None
    who = principal_name(connection.username) if connection.username else None
    codes = _codes(exc)
    krb5_codes = {c.krb5 for c in codes if c.krb5 is not None}
    majors = {c.gss_major for c in codes if c.gss_major is not None}
    url = connection.url
    spn = f"host/{connection.spn_host or connection.server}"
    if krb5_codes & {PREAUTH_FAILED, BAD_INTEGRITY}:
        return LoginRefused(
            f"the Kerberos KDC refused the password for {who} (pre-authentication failed)",
            hint="check the password stored for this endpoint ('remediate connect password "
            "PROFILE') and the user name",
        )
    if C_PRINCIPAL_UNKNOWN in krb5_codes:
        return ConnectionFailed(
            f"the Kerberos KDC does not know the user {who or 'of the ticket'}",
            hint="check --user: a UPN such as admin@CONTOSO.COM or DOMAIN\\admin "
            "(DOMAIN\\ takes the default realm of krb5.conf)",
        )
    if S_PRINCIPAL_UNKNOWN in krb5_codes:
        return ConnectionFailed(
            f"the Kerberos KDC has no service principal {spn} for {url}",
            hint="use the server's own name in --server, or --spn-host NAME when the URL is a "
            "load-balanced name (setspn -L shows a server's SPNs)",
        )
    if krb5_codes & {KDC_UNREACHABLE, REALM_UNKNOWN}:
        realm = (who or "").rpartition("@")[2] or default_realm() or "?"
        return ConnectionFailed(
            f"no Kerberos KDC of realm {realm} could be reached",
            hint="check that a domain controller answers on port 88 from here and the "
            "[realms] of krb5.conf (KRB5_CONFIG); --auth ntlm needs no KDC",
        )
    if KEY_EXPIRED in krb5_codes:
        return ConnectionFailed(
            f"the password of {who} has expired (Kerberos)",
            hint="change it (kpasswd, or on a domain computer), then update the stored one",
        )
    if CLIENT_REVOKED in krb5_codes:
        return ConnectionFailed(
            f"the Kerberos KDC refused {who}: the account is disabled or locked out",
            hint="ask a domain admin to unlock or enable the account",
        )
    if CLOCK_SKEW in krb5_codes:
        return ConnectionFailed(
            "this machine's clock differs too much from the KDC's (Kerberos allows 5 minutes)",
            hint="synchronise the clock (NTP) with the domain",
        )
    if NO_CREDENTIALS_CACHE in krb5_codes or majors & {GSS_NO_CRED, GSS_CREDENTIALS_EXPIRED}:
        return SecretStoreError(
            f"no Kerberos ticket for {who or 'this session'} and no password to get one",
            hint=f"run 'kinit {who or 'USER@REALM'}' (then no password is needed), or give "
            "--user and its password (keyring or --password-stdin)",
        )

    return ConnectionFailed(
        f"the Kerberos login to {url} failed: {first_line(exc)}",
        hint="check the user name, the password or ticket (klist) and krb5.conf",
    )
