"""remediate.exchange.queue_retry: Retry-Queue a connector's queues and watch them."""

from __future__ import annotations

DOCUMENTATION = r"""
module: queue_retry
short_description: Retry a Send connector's queues and say whether mail flows
description:
  - Sends Retry-Queue for each of the connector's queues holding messages (on every source
    transport server), then watches them for up to I(wait) seconds, retrying while they still
    fail (a connector change reaches the Transport service only after AD replication and a
    configuration reload).
  - The verdict is C(flows) only when every queue that held messages was seen empty;
    C(unknown) when nothing was waiting or a queue vanished; C(fails) while they stay in Retry.
  - In check mode nothing is retried; the queues are returned as read.
version_added: "1.0.0"
extends_documentation_fragment:
  - remediate.exchange.endpoint
options:
  name:
    description: The Send connector's name.
    type: str
    required: true
  wait:
    description: Seconds to watch the queues.
    type: float
    default: 30
  fail_on:
    description: Fail the task when the verdict is one of these.
    type: list
    elements: str
    choices: [fails, unknown]
    default: [fails]
author:
  - remediate developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Retry and watch
  remediate.exchange.queue_retry:
    server: "{{ exchange_url }}"
    admin_user: "{{ exchange_admin }}"
    admin_password: "{{ vault_exchange_admin_password }}"
    name: Outbound to Relay
    wait: 60
  delegate_to: localhost
"""

RETURN = r"""
flow:
  description: C(flows), C(fails) or C(unknown).
  returned: success
  type: str
reason:
  description: Why, in a sentence.
  returned: success
  type: str
queues:
  description: The queues as last read, in remediate's one queue shape (as in
    send_connector_info).
  returned: success
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
            "name": {"type": "str", "required": True},
            "wait": {"type": "float", "default": 30},
            "fail_on": {
                "type": "list",
                "elements": "str",
                "choices": ["fails", "unknown"],
                "default": ["fails"],
            },
        },
        supports_check_mode=True,
    )
    require_remediate(module)
    p = module.params
    try:
        with connect(module) as handle:
            if module.check_mode:
                queues = api.queues(handle, p["name"])
                module.exit_json(changed=False, queues=[queue_json(q) for q in queues])
            retried = any(q.message_count > 0 for q in api.queues(handle, p["name"]))
            verdict = api.retry(handle, p["name"], p["wait"])
    except RemediateError as exc:
        fail(module, exc)
    result = {
        "changed": retried,
        "flow": str(verdict.flow),
        "reason": verdict.reason,
        "queues": [queue_json(q) for q in verdict.queues],
    }
    if str(verdict.flow) in p["fail_on"]:
        module.fail_json(msg=verdict.line(), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
