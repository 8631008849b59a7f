"""Every password a bulk run needs, resolved in the main thread before any worker starts.

With ``--password-stdin`` stdin holds two lines: line 1 the admin password, used for every
endpoint whose admin password is not in the keyring (leave it empty when all are there or
use Kerberos); line 2 the one shared relay password, used for every relay account whose
password is not in the keyring under its row's ``credential_key``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from remediate.remote.login import admin_password
from remediate.remote.secrets import relay_password

if TYPE_CHECKING:
    from remediate.core.env import Environment
    from remediate.core.plan import CredentialRef
    from remediate.remote.connections import Connection
    from remediate.run.execute import CredentialSource


def admin_passwords(
    endpoints: Iterable[Connection], env: Environment, *, password_stdin: bool
) -> dict[Connection, str | None]:
    """Per endpoint: the keyring, else stdin line 1, else a Kerberos ticket (kerberos and
    negotiate: no password at all), else a prompt (SecretStoreError when none can answer)."""

    return {
        endpoint: admin_password(endpoint, env, password_stdin=password_stdin, keyring_first=True)
        for endpoint in endpoints
    }


def relay_passwords(
    refs: Iterable[CredentialRef], env: Environment, *, password_stdin: bool
) -> CredentialSource:
    """Every relay password the plans need, now; then served from memory."""

    resolved = {ref: relay_password(ref, env, password_stdin=password_stdin) for ref in refs}

    def serve(ref: CredentialRef) -> str:
        return resolved[ref]

    return serve
