"""Helpers for lab tests: start a Lab on free loopback ports, connect bare pypsrp to it."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from pypsrp.complex_objects import GenericComplexObject
from pypsrp.powershell import RunspacePool
from pypsrp.wsman import WSMan

from remediate.lab.server import Lab


def lab_wsman(lab: Lab, *, password: str | None = None) -> WSMan:
    """A bare pypsrp WSMan connection to the lab, as a script would build it (Basic, or
    NTLM with message encryption for a lab that logs in with NTLM)."""
    ntlm = str(lab.auth) == "ntlm"
    return WSMan(
        lab.host,
        port=lab.port,
        path="PowerShell",
        ssl=lab.tls,
        auth="ntlm" if ntlm else "basic",
        username=lab.admin_user,
        password=lab.admin_password if password is None else password,
        encryption="auto" if ntlm else "never",
        cert_validation=str(lab.ca_file) if lab.tls else False,
        connection_timeout=5,
        reconnection_retries=0,
    )


def lab_pool(lab: Lab, **kwargs: object) -> RunspacePool:
    return RunspacePool(lab_wsman(lab), configuration_name="Microsoft.Exchange", **kwargs)


def start_lab(tmp_path: Path, **kwargs: object) -> Lab:
    """A Lab with Basic authentication unless ``auth`` says otherwise: most tests talk to it
    with bare pypsrp or profiles using Basic over http (the lab's own default is NTLM)."""
    kwargs.setdefault("auth", "basic")
    kwargs.setdefault("state_file", tmp_path / "lab-state.json")
    kwargs.setdefault("workdir", tmp_path / "lab")
    lab = Lab(**kwargs)  # type: ignore[arg-type]
    lab.start()
    return lab


def wire_props(obj: Any) -> dict[str, Any]:
    """An object's properties as pypsrp hands them back, with Exchange's multi-valued
    properties (pypsrp leaves them as raw ``<LST>`` XML) read as lists of their strings and
    GUIDs as strings; a small reader of the tests' own, independent of the tool's."""
    out: dict[str, Any] = {}
    for name, value in obj.adapted_properties.items():
        if isinstance(value, GenericComplexObject) and value.property_sets:
            root = ET.fromstring(value.property_sets[0])  # noqa: S314 - the lab's own reply
            value = [element.text or "" for element in root]
        elif isinstance(value, uuid.UUID):
            value = str(value)
        out[name] = value
    return out
