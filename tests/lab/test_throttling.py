"""The lab's Exchange throttling and latency, driven with bare pypsrp over real HTTP:
MaxConcurrentCommandsPerShell (pypsrp issue 148), PowerShellMaxConcurrency (18 shells per
user, exchange-notes.md "Throttling"), pipelines in flight at once within one RunspacePool
(at most its MaxRunspaces running), and --cmdlet-latency."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pypsrp.exceptions import WSManFaultError
from pypsrp.powershell import PowerShell

from remediate.core.errors import UsageError
from remediate.lab.server import CmdletLatency
from tests.lab.lab_helpers import lab_pool, start_lab


def _get(pool: object, name: str = "Outbound to Relay") -> PowerShell:
    ps = PowerShell(pool)
    ps.add_cmdlet("Get-SendConnector").add_parameter("Identity", name)
    return ps


@pytest.mark.e2e
def test_a_shell_refuses_commands_after_its_quota_as_winrm_does(tmp_path: Path) -> None:
    lab = start_lab(tmp_path, max_commands_per_shell=3)
    try:
        with lab_pool(lab) as pool:
            for _ in range(3):
                assert _get(pool).invoke()
            with pytest.raises(WSManFaultError) as caught:
                _get(pool).invoke()
            assert caught.value.code == "w:InternalError"  # as pypsrp issue 148 shows it
            assert "maximum number of concurrent commands per shell" in caught.value.reason
        with lab_pool(lab) as fresh:  # a new shell has its own quota
            assert _get(fresh).invoke()
    finally:
        lab.stop()


@pytest.mark.e2e
def test_a_user_gets_at_most_max_shells_at_once(tmp_path: Path) -> None:
    lab = start_lab(tmp_path, max_shells_per_user=2)
    try:
        first, second, third = lab_pool(lab), lab_pool(lab), lab_pool(lab)
        first.open()
        second.open()
        with pytest.raises(WSManFaultError) as caught:
            third.open()
        assert caught.value.code == 2150859173
        assert "maximum of 2 concurrent shells, which has been exceeded" in caught.value.reason
        first.close()  # a closed shell frees its place
        third.open()
        assert _get(third).invoke()
        second.close()
        third.close()
    finally:
        lab.stop()


@pytest.mark.e2e
def test_the_default_quotas_are_exchanges(tmp_path: Path) -> None:
    lab = start_lab(tmp_path)
    try:
        assert (lab.max_shells_per_user, lab.max_commands_per_shell) == (18, 1000)
    finally:
        lab.stop()


@pytest.mark.e2e
def test_cmdlet_latency_per_cmdlet_and_pipelines_in_flight_at_once(tmp_path: Path) -> None:
    latency = CmdletLatency(0.0, {"Get-SendConnector": 0.4})
    lab = start_lab(tmp_path, cmdlet_latency=latency)
    try:
        with lab_pool(lab, max_runspaces=4) as pool:
            started = time.monotonic()
            assert _get(pool).invoke()
            alone = time.monotonic() - started
            assert alone >= 0.4  # the latency is spent on the server
            batch = [_get(pool) for _ in range(4)]
            started = time.monotonic()
            for ps in batch:
                ps.begin_invoke()
            for ps in batch:
                ps.end_invoke()
            together = time.monotonic() - started
            assert all(ps.output and not ps.had_errors for ps in batch)
            assert together < 4 * 0.4  # four runspaces ran side by side
            queue = PowerShell(pool)
            queue.add_cmdlet("Get-Queue")
            started = time.monotonic()
            queue.invoke()  # another cmdlet: no latency
            assert time.monotonic() - started < 0.4
    finally:
        lab.stop()


@pytest.mark.e2e
def test_pipelines_beyond_max_runspaces_wait_for_a_runspace(tmp_path: Path) -> None:
    lab = start_lab(tmp_path, cmdlet_latency=CmdletLatency(0.3))
    try:
        with lab_pool(lab, max_runspaces=1) as pool:
            batch = [_get(pool) for _ in range(3)]
            started = time.monotonic()
            for ps in batch:
                ps.begin_invoke()
            for ps in batch:
                ps.end_invoke()
            assert time.monotonic() - started >= 3 * 0.3  # one runspace: one at a time
            assert all(ps.output for ps in batch)
    finally:
        lab.stop()


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["150"], (0.15, {})),
        (["20", "Set-SendConnector=150"], (0.02, {"set-sendconnector": 0.15})),
        ([], (0.0, {})),
    ],
)
def test_cmdlet_latency_parsing(texts: list[str], expected: tuple) -> None:
    parsed = CmdletLatency.parse(texts)
    assert (parsed.default, dict(parsed.by_cmdlet)) == expected


@pytest.mark.parametrize("text", ["fast", "-5", "=10", "Set-SendConnector=nan"])
def test_bad_cmdlet_latency_is_one_clear_error(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        CmdletLatency.parse([text])
    assert "--cmdlet-latency" in caught.value.message
