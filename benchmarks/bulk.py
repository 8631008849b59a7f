"""`remediate bulk apply` on 200 connectors over 4 lab endpoints, against two baselines.

The script starts 4 labs (each a child process of this script, 50 extra connectors each)
and times, in one run, ROUNDS rounds of three ways to set the Port of all 200 connectors
(each round asks for a new port, so every connector changes every time):

  bulk   remediate bulk apply FILE --yes (in this process, as the command runs: file
         validation, one Get-SendConnector per endpoint, plans, a backup and an audit entry
         per change, the report)
  floor  a bare pypsrp loop: one RunspacePool per endpoint, the same Set-SendConnector calls
  naive  one new RunspacePool per connector (what a quick script does)

All three work on the 4 endpoints in parallel (one thread each). After the first bulk round
the same file is applied again and must report all 200 ok, nothing changed (not timed).
Prints the medians, the ratios to the floor (target: bulk within 1.25x) and the peak memory
of this process.
Usage: .venv/bin/python benchmarks/bulk.py [--rounds N]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"  # passwords from stdin

ENDPOINTS = 4
PER_ENDPOINT = 50
ADMIN_PASSWORD = "Bench-Admin-Pw-1"
ROUNDS = 3
FIRST_PORT = 2600


def serve_lab(directory: Path) -> None:
    """Child mode: one lab with PER_ENDPOINT extra connectors until stdin closes."""
    from remediate.lab.server import Lab

    with Lab(
        state_file=directory / "state.json",
        workdir=directory / "work",
        admin_password=ADMIN_PASSWORD,
        extra_connectors=PER_ENDPOINT,
        auth="basic",  # the figures below were measured with Basic over http
    ) as lab:
        lab.write_ready_file(directory / "ready.json")
        sys.stdin.read()


def start_labs(base: Path) -> tuple[list[subprocess.Popen[bytes]], list[dict[str, object]]]:
    processes, infos = [], []
    for number in range(ENDPOINTS):
        directory = base / f"lab{number}"
        directory.mkdir()
        processes.append(
            subprocess.Popen(
                [sys.executable, __file__, "--serve-lab", str(directory)],
                stdin=subprocess.PIPE,
            )
        )
    for number, process in enumerate(processes):
        ready = base / f"lab{number}" / "ready.json"
        deadline = time.monotonic() + 30
        while not ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"lab {number} did not start")
            time.sleep(0.05)
        time.sleep(0.05)  # the file is written whole by then; give the writer a beat
        infos.append(json.loads(ready.read_text(encoding="utf-8")))
    return processes, infos


def names() -> list[str]:
    from remediate.lab.seed import EXTRA_PREFIX

    return [f"{EXTRA_PREFIX} {n:03d}" for n in range(1, PER_ENDPOINT + 1)]


def write_spec(path: Path, infos: list[dict[str, object]], port: int) -> None:
    rows = [
        f"  - endpoint: {info['endpoint']}\n    auth: basic\n    user: {info['username']}\n"
        f"    connector: {name}\n    port: {port}\n"
        for info in infos
        for name in names()
    ]
    path.write_text("connectors:\n" + "".join(rows), encoding="utf-8")


def wsman(info: dict[str, object]) -> Any:
    from pypsrp.wsman import WSMan

    return WSMan(
        str(info["host"]),
        port=int(str(info["port"])),
        path=str(info["path"]).lstrip("/"),
        ssl=False,
        auth="basic",
        username=str(info["username"]),
        password=ADMIN_PASSWORD,
        encryption="never",
        cert_validation=False,
    )


def set_port(pool: object, name: str, port: int) -> None:
    from pypsrp.powershell import PowerShell

    ps = PowerShell(pool)
    ps.add_cmdlet("Set-SendConnector")
    ps.add_parameter("Identity", name)
    ps.add_parameter("Port", port)
    ps.add_parameter("Confirm", False)
    ps.invoke()
    if ps.had_errors:
        raise SystemExit(f"Set-SendConnector {name} failed: {ps.streams.error}")


def per_endpoint(infos: list[dict[str, object]], work: Callable[[dict[str, object]], None]) -> None:
    threads = [threading.Thread(target=work, args=(info,)) for info in infos]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def floor(infos: list[dict[str, object]], port: int) -> None:
    from pypsrp.powershell import RunspacePool

    def work(info: dict[str, object]) -> None:
        with RunspacePool(wsman(info), configuration_name="Microsoft.Exchange") as pool:
            for name in names():
                set_port(pool, name, port)

    per_endpoint(infos, work)


def naive(infos: list[dict[str, object]], port: int) -> None:
    from pypsrp.powershell import RunspacePool

    def work(info: dict[str, object]) -> None:
        for name in names():
            with RunspacePool(wsman(info), configuration_name="Microsoft.Exchange") as pool:
                set_port(pool, name, port)

    per_endpoint(infos, work)


def bulk(spec: Path, state: Path, expect: str = f"changed={ENDPOINTS * PER_ENDPOINT},") -> None:
    from remediate.cli import main
    from remediate.env import Environment

    out, err = io.StringIO(), io.StringIO()
    env = Environment(
        stdin=io.StringIO(ADMIN_PASSWORD + "\n"),
        stdout=out,
        stderr=err,
        stdin_isatty=False,
        stdout_isatty=False,
        environ={**os.environ, "XDG_STATE_HOME": str(state), "XDG_CONFIG_HOME": str(state)},
    )
    status = main(["bulk", "apply", str(spec), "--yes", "--password-stdin"], env)
    if status != 0 or expect not in out.getvalue():
        raise SystemExit(f"bulk apply failed ({status}):\n{out.getvalue()[-2000:]}{err.getvalue()}")


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--serve-lab", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_lab:
        serve_lab(args.serve_lab)
        return
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        processes, infos = start_labs(base)
        try:
            times: dict[str, list[float]] = {"bulk": [], "floor": [], "naive": []}
            peaks: dict[str, float] = {}
            port = FIRST_PORT
            for round_number in range(args.rounds):
                order = ["bulk", "floor", "naive"]
                order = order[round_number % 3 :] + order[: round_number % 3]
                for method in order:
                    port += 1
                    spec = base / f"bulk-{port}.yaml"
                    write_spec(spec, infos, port)
                    started = time.perf_counter()
                    if method == "bulk":
                        bulk(spec, base / "state")
                    elif method == "floor":
                        floor(infos, port)
                    else:
                        naive(infos, port)
                    times[method].append(time.perf_counter() - started)
                    if method == "bulk" and round_number == 0:  # same file again: all ok
                        bulk(
                            spec,
                            base / "state",
                            expect=f"ok={ENDPOINTS * PER_ENDPOINT}, changed=0,",
                        )
                        print("second bulk run of the same file: all ok, nothing changed")
                    peaks[method] = max(peaks.get(method, 0.0), peak_mib())
                print(
                    f"round {round_number + 1}: "
                    + ", ".join(f"{m} {times[m][-1]:.2f}s" for m in times),
                    flush=True,
                )
        finally:
            for process in processes:  # a lab stops when its stdin closes
                if process.stdin is not None:
                    process.stdin.close()
            for process in processes:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.terminate()
    medians = {m: statistics.median(t) for m, t in times.items()}
    total = ENDPOINTS * PER_ENDPOINT
    print(f"{total} connectors over {ENDPOINTS} endpoints, {args.rounds} round(s), medians:")
    for method, median in medians.items():
        print(f"  {method:6} {median:6.2f}s  {total / median:6.1f} connectors/s")
    print(f"bulk / floor  = {medians['bulk'] / medians['floor']:.2f}x (target <= 1.25x)")
    print(f"naive / floor = {medians['naive'] / medians['floor']:.2f}x")
    print(f"bulk / naive  = {medians['bulk'] / medians['naive']:.2f}x")
    print(
        "peak memory of this process (RSS, MiB) after the first round of each: "
        + ", ".join(f"{m} {p:.0f}" for m, p in peaks.items())
    )


if __name__ == "__main__":
    main()
