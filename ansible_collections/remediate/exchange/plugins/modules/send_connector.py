"""remediate.exchange.send_connector: wanted Send connector settings, applied idempotently."""

from __future__ import annotations

DOCUMENTATION = r"""
module: send_connector
short_description: Set an Exchange Send connector's smart-host settings, with backup and audit
description:
  - Reads the Send connector, plans only the settings that differ (with remediate's
    pre-flight of the rules Exchange enforces), backs the connector up, applies the plan one
    cmdlet at a time, appends it to remediate's audit log and reads the connector back.
  - Check mode shows the plan and sends nothing. Diff mode shows before and after.
  - "The credential rule: Exchange never returns a credential's user name or password, only
    whether one is set. A credential therefore cannot be compared, only re-entered: when the
    connector already holds one, I(relay_user) alone changes nothing (the task stays
    C(ok)); set I(reenter_credential=true) to send it again (the task then always reports
    C(changed))."
version_added: "1.0.0"
extends_documentation_fragment:
  - remediate.exchange.endpoint
options:
  name:
    description: The Send connector's name.
    type: str
    required: true
  playbook:
    description:
      - The remediate playbook whose options are used, by event number or id. C(2016)
        (smart-host authentication) takes I(mechanism), I(relay_user), I(smart_hosts),
        I(port), I(require_tls), I(tls_auth_level), I(tls_domain); C(2002) (connection
        errors) takes I(smart_hosts), I(port), I(enabled), I(protocol_logging).
    type: str
    default: "2016"
  mechanism:
    description: SmartHostAuthMechanism.
    type: str
    choices: [None, BasicAuth, BasicAuthRequireTLS, ExchangeServer, ExternalAuthoritative]
  relay_user:
    description: The relay account's user name (AuthenticationCredential).
    type: str
  relay_password:
    description: The relay account's password (from a vaulted variable).
    type: str
  reenter_credential:
    description: Send the credential again although the connector holds one (it cannot be compared).
    type: bool
    default: false
  smart_hosts:
    description: The smart hosts, in order.
    type: list
    elements: str
  port:
    description: The smart hosts' port.
    type: int
  require_tls:
    description: RequireTLS.
    type: bool
  tls_auth_level:
    description: TlsAuthLevel.
    type: str
    choices: [EncryptionOnly, CertificateValidation, DomainValidation]
  tls_domain:
    description: TlsDomain (with DomainValidation).
    type: str
  enabled:
    description: Enable the connector (C(true) only).
    type: bool
  protocol_logging:
    description: ProtocolLoggingLevel.
    type: str
    choices: [None, Verbose]
author:
  - remediate developers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Relay through the smart host with Basic authentication over TLS
  remediate.exchange.send_connector:
    server: "{{ exchange_url }}"
    admin_user: "{{ exchange_admin }}"
    admin_password: "{{ vault_exchange_admin_password }}"
    name: Outbound to Relay
    mechanism: BasicAuthRequireTLS
    relay_user: relay@contoso.com
    relay_password: "{{ vault_relay_password }}"
  delegate_to: localhost

- name: Rotate the relay password (a credential is re-entered, never compared)
  remediate.exchange.send_connector:
    server: "{{ exchange_url }}"
    admin_user: "{{ exchange_admin }}"
    admin_password: "{{ vault_exchange_admin_password }}"
    name: Outbound to Relay
    relay_user: relay@contoso.com
    relay_password: "{{ vault_new_relay_password }}"
    reenter_credential: true
  delegate_to: localhost
"""

RETURN = r"""
changed:
  description: Whether Exchange changed the connector (in check mode, whether it would).
  returned: always
  type: bool
diff:
  description: The changed settings before and after, by Exchange property name.
  returned: in diff mode
  type: dict
  sample: {"before": {"SmartHostAuthMechanism": "ExchangeServer"},
           "after": {"SmartHostAuthMechanism": "BasicAuthRequireTLS"}}
steps:
  description: The plan's steps, one cmdlet and its parameter names each (never values).
  returned: always
  type: list
  elements: str
notes:
  description: What the plan says (a credential kept because it cannot be compared, ...).
  returned: always
  type: list
  elements: str
backup:
  description: The backup file remediate wrote before the change (C(remediate undo BACKUP)).
  returned: when changed and not in check mode
  type: str
connector:
  description: The connector as Exchange reports it after the task (never a password).
  returned: success
  type: dict
summary:
  description: What ran, step by step.
  returned: when not in check mode and something was sent
  type: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 (after the docs, as Ansible lays modules out)

from ansible_collections.remediate.exchange.plugins.module_utils.endpoint import (  # noqa: E402
    ENDPOINT_OPTIONS,
    RemediateError,
    api,
    connect,
    fail,
    require_remediate,
)

SETTINGS = {
    "name": {"type": "str", "required": True},
    "playbook": {"type": "str", "default": "2016"},
    "mechanism": {
        "type": "str",
        "choices": [
            "None",
            "BasicAuth",
            "BasicAuthRequireTLS",
            "ExchangeServer",
            "ExternalAuthoritative",
        ],
    },
    "relay_user": {"type": "str"},
    "relay_password": {"type": "str", "no_log": True},
    "reenter_credential": {"type": "bool", "default": False},
    "smart_hosts": {"type": "list", "elements": "str"},
    "port": {"type": "int"},
    "require_tls": {"type": "bool"},
    "tls_auth_level": {
        "type": "str",
        "choices": ["EncryptionOnly", "CertificateValidation", "DomainValidation"],
    },
    "tls_domain": {"type": "str"},
    "enabled": {"type": "bool"},
    "protocol_logging": {"type": "str", "choices": ["None", "Verbose"]},
}


def describe(step):
    names = [p.name for p in step.parameters if p.name not in ("Confirm", "WhatIf", "Identity")]
    return " ".join([step.cmdlet, *(f"-{name}" for name in names)])


def main():
    module = AnsibleModule(
        argument_spec={**ENDPOINT_OPTIONS, **SETTINGS},
        supports_check_mode=True,
        required_by={"relay_password": ["relay_user"]},
    )
    require_remediate(module)
    p = module.params
    if p["enabled"] is False:
        module.fail_json(msg="enabled: only true is supported (disabling is not a fix)")
    options = {
        "mechanism": p["mechanism"],
        "username": p["relay_user"],
        "reenter_credential": p["reenter_credential"],
        "smart_hosts": tuple(p["smart_hosts"] or ()),
        "port": p["port"],
        "require_tls": p["require_tls"],
        "tls_auth_level": p["tls_auth_level"],
        "tls_domain": p["tls_domain"],
        "enable": p["enabled"],
        "protocol_logging": p["protocol_logging"],
    }
    try:
        with connect(module) as handle:
            current = api.read_connectors(handle, p["name"])[0]
            plan = api.plan(handle, p["playbook"], p["name"], **options)
            rows = api.diff(plan, current)
            result = {
                "changed": bool(plan.changes),
                "steps": [describe(step) for step in plan.changes],
                "notes": list(plan.notes),
            }
            if module._diff:
                result["diff"] = {
                    "before": {row[0]: row[1] for row in rows},
                    "after": {row[0]: row[2] for row in rows},
                }
            if module.check_mode or not plan.changes:
                module.exit_json(connector=current.to_json(), **result)
            try:
                outcome = api.apply(handle, plan, relay_password=p["relay_password"])
            except api.StepFailed as exc:  # what was applied before the refused step
                partial = exc.outcome
                result["backup"] = str(partial.backup) if partial.backup else None
                result["summary"] = partial.summary
                fail(module, exc, **result)
            result["changed"] = outcome.changed
            result["backup"] = str(outcome.backup) if outcome.backup else None
            result["summary"] = outcome.summary
            module.exit_json(connector=outcome.after.to_json(), **result)
    except RemediateError as exc:
        fail(module, exc)


if __name__ == "__main__":
    main()
