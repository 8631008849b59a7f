"""Start-up time of `remediate --help` and `--version` against `python -c "import argparse"`.

Each command runs ROUNDS times as a new process (the console script of this venv, the same
interpreter); the median wall time is printed with the ratio to the baseline (goal: --help
within 1.5x). Two cases:

  cached      bytecode in __pycache__, as after an ordinary install: PYTHONDONTWRITEBYTECODE
              is dropped and the package compiled first (with the variable set, as in some
              shells, an edited module would be compiled on every run)
  no-cache    PYTHONDONTWRITEBYTECODE=1 and the package copied to a directory without
              __pycache__ (first on PYTHONPATH): every run compiles remediate's modules, as
              a read-only or --no-compile install does. The standard library keeps its cache.

It also lists the modules --help imports that the goal excludes (playbooks, YAML, planner,
jinja2): there must be none.
Usage: .venv/bin/python benchmarks/startup.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "remediate"
BASELINE = 'python -c "import argparse"'
EXCLUDED = (
    "yaml",
    "jinja2",
    "remediate.core.playbooks",
    "remediate.core.planner",
    "remediate.render.script",
)


def timed(
    commands: dict[str, list[str]], env: dict[str, str], rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU (user + system) times per command; each round runs every command once,
    so a change of load on this shared machine touches them all alike."""
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, argv in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
            wall[name].append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return wall, cpu


def imported(env: dict[str, str]) -> list[str]:
    """The excluded modules `remediate --help` imports (python -X importtime's list)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "remediate", "--help"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    names = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    return sorted(n for n in names if n.split(".")[0] in EXCLUDED or n in EXCLUDED)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    script = str(Path(sys.executable).with_name("remediate"))
    commands = {
        BASELINE: [sys.executable, "-c", "import argparse"],
        "remediate --help": [script, "--help"],
        "remediate --version": [script, "--version"],
    }
    print(f"machine: {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f} at start")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "remediate"
        shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
        cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        compileall = [sys.executable, "-m", "compileall", "-q", str(PACKAGE)]
        subprocess.run(compileall, env=cached, stdout=subprocess.DEVNULL, check=True)
        cases = {
            "cached": cached,
            "no-cache": {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": tmp},
        }
        for case, env in cases.items():
            for argv in commands.values():  # warm the page cache and __pycache__ first
                subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
            wall, cpu = timed(commands, env, args.rounds)
            medians = {name: statistics.median(t) for name, t in wall.items()}
            cpus = {name: statistics.median(t) for name, t in cpu.items()}
            base, base_cpu = medians[BASELINE], cpus[BASELINE]
            print(f"{case}, {args.rounds} rounds, medians of wall time and of CPU time:")
            for name, median in medians.items():
                print(
                    f"  {name:28} wall {1000 * median:6.1f} ms {median / base:5.2f}x"
                    f"   CPU {1000 * cpus[name]:5.1f} ms {cpus[name] / base_cpu:5.2f}x"
                )
            met = medians["remediate --help"] <= 1.5 * base
            print(f"  goal: --help within 1.5x, by the medians: {'met' if met else 'NOT met'}")
            excluded = imported(env)
            print(f"  --help imports of {', '.join(EXCLUDED)}: {', '.join(excluded) or 'none'}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
