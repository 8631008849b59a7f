"""Helpers for lab tests: start a Lab on free loopback ports, connect bare pypsrp to it."""

from __future__ import annotations

from pathlib import Path

from pypsrp.powershell import RunspacePool
from pypsrp.wsman import WSMan

from remediate.lab.server import Lab


def lab_wsman(lab: Lab, *, password: str | None = None) -> WSMan:
    """A bare pypsrp WSMan connection to the lab, as a script would build it."""
    return WSMan(
        lab.host,
        port=lab.port,
        path="PowerShell",
        ssl=lab.tls,
        auth="basic",
        username=lab.admin_user,
        password=lab.admin_password if password is None else password,
        encryption="never",
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
