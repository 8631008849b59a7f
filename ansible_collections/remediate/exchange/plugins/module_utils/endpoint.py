"""What the remediate.exchange modules share: the endpoint options and opening a session.

The modules call ``remediate.api`` only (its stable, versioned surface); passwords come in
as module options marked ``no_log`` and are handed to the API, never looked up elsewhere.
"""

from __future__ import annotations

import os
from typing import Any

try:
    from remediate import api
    from remediate.core.errors import RemediateError  # pylint: disable=unused-import  # re-exported
except ImportError:  # reported by require_remediate() with a clear message
    api = None
    RemediateError = Exception

ENDPOINT_OPTIONS: dict[str, dict[str, Any]] = {
    "server": {"type": "str", "required": True},
    "auth": {
        "type": "str",
        "default": "negotiate",
        "choices": ["kerberos", "negotiate", "ntlm", "basic", "credssp"],
    },
    "admin_user": {"type": "str"},
    "admin_password": {"type": "str", "no_log": True},
    "validate_certs": {"type": "bool", "default": True},
    "ca_file": {"type": "path"},
    "state_dir": {"type": "path"},
}

SUPPORTED_API = (1, 1)  # 1.1: StepFailed carries the outcome of a failed apply


def require_remediate(module: Any) -> None:
    if api is None:
        module.fail_json(
            msg="the remediate Python package is not installed for the controller's Python "
            "(pip install remediate; run the task with delegate_to: localhost)"
        )
    major, minor = (int(part) for part in api.API_VERSION.split(".")[:2])
    if major != SUPPORTED_API[0] or minor < SUPPORTED_API[1]:
        module.fail_json(msg=f"remediate.api {api.API_VERSION} is not a 1.x API of 1.1 or later")


def connect(module: Any) -> Any:
    """An open remediate.api Handle for the module's endpoint options; warnings are passed
    on to Ansible."""
    params = module.params
    environ = None
    if params.get("state_dir"):
        environ = {**os.environ, "XDG_STATE_HOME": params["state_dir"]}
    return api.connect(
        params["server"],
        user=params.get("admin_user"),
        password=params.get("admin_password"),
        auth=params["auth"],
        verify=params["validate_certs"],
        ca_file=params.get("ca_file"),
        environ=environ,
        warn=module.warn,
    )


def fail(module: Any, exc: Any, **result: Any) -> None:
    """fail_json with the engine's one-line message (Exchange's, for a refused step) and
    its hint (a RemediateError declares both)."""
    module.fail_json(msg=exc.message, hint=exc.hint, **result)


def queue_json(queue: Any) -> dict[str, Any]:
    """One queue as the modules return it: the engine's one queue shape (``api.queue_json``,
    the same document as ``remediate show --queues --json``)."""
    return api.queue_json(queue)
