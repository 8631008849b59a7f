"""remediate.exchange.send_connector_info: Send connectors and their queues."""

from __future__ import annotations

DOCUMENTATION = r"""
module: send_connector_info
short_description: Read Exchange Send connectors and their queues on each source server
description:
  - Returns the Send connectors (or the one named) as Exchange reports them, and with
    I(queues=true) each connector's smart-host delivery queues on every one of its source
    transport servers (Get-Queue is asked per server, since without -Server it answers only
    for the server the session runs on).
  - Changes nothing; runs in check mode too.
version_added: "1.0.0"
extends_documentation_fragment:
  - remediate.exchange.endpoint
options:
  name:
    description: Only this connector.
    type: str
  queues:
    description: Also read each connector's queues.
    type: bool
    default: true
author:
  - remediate developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: The connectors and their queues
  remediate.exchange.send_connector_info:
    server: "{{ exchange_url }}"
    admin_user: "{{ exchange_admin }}"
    admin_password: "{{ vault_exchange_admin_password }}"
  delegate_to: localhost
  register: exchange
"""

RETURN = r"""
connectors:
  description: The connectors, by Exchange property name (never a password; the
    credential only as C(set) or C(not set)), each with C(queues) when read, a list of
    queues in remediate's one queue shape (C(identity), C(server), C(status),
    C(message_count), C(next_hop_domain), C(next_hop_connector), C(last_error), and the
    C(cause), C(explanation) and C(action) read in LastError).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (after the docs, as Ansible lays modules out)

from ansible_collections.remediate.exchange.plugins.module_utils.endpoint import (  # noqa: E402
    ENDPOINT_OPTIONS,
    RemediateError,
    api,
    connect,
    fail,
    queue_json,
    require_remediate,
)


def main():
    module = AnsibleModule(
        argument_spec={
            **ENDPOINT_OPTIONS,
            "name": {"type": "str"},
            "queues": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    require_remediate(module)
    try:
        with connect(module) as handle:
            out = []
            for connector in api.read_connectors(handle, module.params["name"]):
                data = connector.to_json()
                if module.params["queues"]:
                    data["queues"] = [queue_json(q) for q in api.queues(handle, connector)]
                out.append(data)
    except RemediateError as exc:
        fail(module, exc)
    module.exit_json(changed=False, connectors=out)


if __name__ == "__main__":
    main()
