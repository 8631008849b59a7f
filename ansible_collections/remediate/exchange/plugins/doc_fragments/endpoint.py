"""The endpoint options every remediate.exchange module takes."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  server:
    description:
      - The Exchange Management Shell endpoint, for example C(https://ex01.contoso.com/PowerShell).
    type: str
    required: true
  auth:
    description:
      - How to log in. C(basic) over plain http sends the password readably and warns.
    type: str
    default: negotiate
    choices: [kerberos, negotiate, ntlm, basic, credssp]
  admin_user:
    description: The Exchange admin account.
    type: str
  admin_password:
    description:
      - The admin account's password (from a vaulted variable). Omit it to log in with a
        Kerberos ticket.
    type: str
  validate_certs:
    description: Validate the endpoint's TLS certificate.
    type: bool
    default: true
  ca_file:
    description: A CA bundle to validate the endpoint's certificate with.
    type: path
  state_dir:
    description:
      - Where remediate keeps backups, its audit log and connector locks (as XDG_STATE_HOME).
        Default the controller user's state directory.
    type: path
notes:
  - "The module runs on the controller and needs the remediate Python package there; give the
    task C(delegate_to: localhost)."
requirements:
  - remediate (Python package, on the controller)
"""
