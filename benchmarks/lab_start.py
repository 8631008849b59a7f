"""How long `remediate lab --ready-file` takes to be ready (target: under two seconds).

Runs the installed command five times, each with a fresh state, and prints the time from
process start to the ready file appearing. Usage: .venv/bin/python benchmarks/lab_start.py
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 5
TIMEOUT = 20.0


def one_start(workdir: Path) -> float:
    ready = workdir / "lab.json"
    env = {**os.environ, "XDG_STATE_HOME": str(workdir / "state")}
    exe = Path(sys.executable).with_name("remediate")
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(exe), "lab", "--ready-file", str(ready), "--state", str(workdir / "state.json")],
        stdout=subprocess.DEVNULL,
        env=env,
    )
    try:
        while not ready.exists():
            if process.poll() is not None:
                raise SystemExit(f"remediate lab exited with {process.returncode}")
            if time.perf_counter() - started > TIMEOUT:
                raise SystemExit("remediate lab did not become ready")
            time.sleep(0.01)
        return time.perf_counter() - started
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(10)


def main() -> None:
    times = []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as tmp:
            times.append(one_start(Path(tmp)))
    print(f"remediate lab ready in: {', '.join(f'{t:.2f}s' for t in times)}")
    print(f"median {statistics.median(times):.2f}s, max {max(times):.2f}s (target < 2.00s)")


if __name__ == "__main__":
    main()
