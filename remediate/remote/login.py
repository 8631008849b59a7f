"""The admin password a connection logs in with, or none when a Kerberos ticket does it.

- ``kerberos``/``negotiate`` without ``--user``: the ticket cache's default principal.
- ``kerberos``/``negotiate`` with ``--user``: the stored password; with ``--password-stdin``
  line 1 (an empty line, or no line, means "use my ticket"); else a ticket for that user in
  the cache (``kinit user@REALM``); else a prompt; else a clear error.
- ``basic``/``ntlm``/``credssp``: the password as ``secrets.endpoint_password`` finds it.
- ``certificate``: no password.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remediate.core.errors import SecretStoreError
from remediate.remote.kerberos import has_ticket, principal_name, uses_gssapi
from remediate.remote.secrets import (
    ENDPOINT_SERVICE,
    endpoint_password,
    get_secret,
    keyring_usable,
    stdin_secret,
)

if TYPE_CHECKING:
    from remediate.core.env import Environment
    from remediate.remote.connections import Connection


def admin_password(
    connection: Connection,
    env: Environment,
    *,
    password_stdin: bool = False,
    keyring_first: bool = False,
) -> str | None:
    """``keyring_first``: a stored password wins over stdin (bulk: line 1 is for the endpoints
    whose password is not stored)."""

    if connection.username is None or str(connection.auth) == "certificate":
        return None
    kerberos = uses_gssapi(connection.auth)
    if keyring_first or (kerberos and not password_stdin):
        stored = (
            get_secret(ENDPOINT_SERVICE, connection.secret_key, env.environ)
            if keyring_usable(env.environ)
            else None
        )
        if stored:
            return stored
    if not kerberos:
        return endpoint_password(connection, env, password_stdin=password_stdin)
    if password_stdin:
        return _stdin_line_one(connection, env)
    principal = principal_name(connection.username)
    if has_ticket(principal):
        return None
    if env.interactive:
        return endpoint_password(connection, env)
    raise SecretStoreError(
        f"no password for {connection.username} at {connection.label} and no Kerberos ticket "
        f"for {principal}",
        hint=f"run 'kinit {principal}' (then no password is needed), or store the password "
        "with 'remediate connect password PROFILE', or pipe it with --password-stdin",
    )


def _stdin_line_one(connection: Connection, env: Environment) -> str | None:
    """Line 1 of stdin; empty or absent: log in with the ticket cache."""

    what = f"the admin password of {connection.username} at {connection.label}"
    if env.stdin_isatty:
        return stdin_secret(env, 1, what)  # refuses a terminal, as for every password
    lines = env.stdin_lines()
    if not lines or not lines[0]:
        return None
    return stdin_secret(env, 1, what)
