"""`remediate bulk apply` against bare-pypsrp scripts doing the same work, over 4 lab endpoints.

Every method does, per endpoint, the same work: read (Get-SendConnector), plan (which
connectors need the new Port), change (one Set-SendConnector per connector), record (a 0600
JSON backup per connector and one audit line each). Methods, all 4 endpoints in parallel:

  bulk     remediate bulk apply FILE --yes, in this process as the command runs (file
           validation, per-connector locks, the read, plans, backups, audit, report, undo
           script; the shells in its worker processes, --processes' default)
  floor    bare pypsrp: one RunspacePool per endpoint, one pipeline at a time
  fastest  bare pypsrp: one RunspacePool per endpoint with IN_FLIGHT runspaces, IN_FLIGHT
           pipelines in flight at once (begin_invoke; end_invoke of the oldest, then the next
           is sent: a sliding window). Several statements in one pipeline are not used:
           Exchange's no-language endpoint takes single cmdlets (exchange-notes.md), and the
           lab accepting statements is not proof that Exchange does
  fastest-processes  fastest, each endpoint's window in its own (forked) process
  naive    a new RunspacePool per connector (Get-SendConnector -Identity, then Set)

Latency profiles (the lab's --cmdlet-latency): "zero" (the tool's own cost) and "realistic",
an ASSUMPTION: Set-SendConnector 150 ms (an AD write, often 100-300 ms on real servers),
every other cmdlet 20 ms. Each round asks for a new port, so every connector changes.
Prints medians, ratios, round trips (HTTP requests) per connector and Get-SendConnector
calls per endpoint counted by the labs, the CPU per connector of this process and of the
labs (all on the same cores; worker processes' CPU counted with this process's and also
shown apart), the load
average, the peak memory of `remediate bulk apply` run as its own process with its workers
(RSS and PSS summed over them), naive / fastest (the best bare pypsrp does) and the shortest
run the CPU measured allows on this machine's cores. Each round records into new
directories, bulk's state directory included.
Usage: .venv/bin/python benchmarks/bulk.py [--connectors 200 [2000]] [--rounds 3 [1]]
       [--latency zero|realistic|both]
       [--methods bulk,floor,fastest,fastest-processes,naive]
       [--bulk-args "--in-flight 16"]
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
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"  # passwords from stdin

ENDPOINTS = 4
BULK_ARGS: list[str] = []  # --bulk-args: more options for `remediate bulk apply`
ADMIN_PASSWORD = "Bench-Admin-Pw-1"
IN_FLIGHT = 8  # the same bound bulk uses by default (--in-flight)
LATENCY = {"zero": [], "realistic": ["20", "Set-SendConnector=150"]}  # ms; see the docstring
FIRST_PORT = 2600
Info = dict[str, Any]


# --- labs --------------------------------------------------------------------------------------


def serve_lab(directory: Path, per_endpoint: int, latency: list[str]) -> None:
    """Child mode: one lab; each line on stdin asks for its counts (HTTP requests, cmdlets
    run), EOF stops it."""
    from remediate.lab.server import CmdletLatency, Lab

    with Lab(
        state_file=directory / "state.json",
        workdir=directory / "work",
        admin_password=ADMIN_PASSWORD,
        extra_connectors=per_endpoint,
        auth="basic",  # Basic over http: the same login cost for every method
        config_delay=0,
        cmdlet_latency=CmdletLatency.parse(latency),
    ) as lab:
        lab.write_ready_file(directory / "ready.json")
        for _ in sys.stdin:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            cpu_us = int(1e6 * (usage.ru_utime + usage.ru_stime))
            counts = {"requests": lab.requests_seen, "cpu_us": cpu_us}
            counts.update(lab.organization.cmdlets_run())
            print(json.dumps(counts), flush=True)


class Labs:
    def __init__(self, base: Path, per_endpoint: int, latency: list[str]) -> None:
        self.processes: list[subprocess.Popen[str]] = []
        self.infos: list[Info] = []
        for number in range(ENDPOINTS):
            directory = base / f"lab{number}"
            directory.mkdir()
            command = [sys.executable, __file__, "--serve-lab", str(directory)]
            command += ["--per-endpoint", str(per_endpoint), "--lab-latency", json.dumps(latency)]
            self.processes.append(
                subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            )
        for number, process in enumerate(self.processes):
            ready = base / f"lab{number}" / "ready.json"
            deadline = time.monotonic() + 120
            while not ready.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"lab {number} did not start")
                time.sleep(0.05)
            time.sleep(0.05)
            self.infos.append(json.loads(ready.read_text(encoding="utf-8")))

    def counts(self) -> dict[str, int]:
        """HTTP requests, CPU (microseconds) and cmdlets run, summed over the labs."""
        total: dict[str, int] = {}
        for process in self.processes:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write("count\n")
            process.stdin.flush()
            for key, value in json.loads(process.stdout.readline()).items():
                total[key] = total.get(key, 0) + int(value)
        return total

    def stop(self) -> None:
        for process in self.processes:
            if process.stdin is not None:
                process.stdin.close()
        for process in self.processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.terminate()


# --- the work ----------------------------------------------------------------------------------


def names(per_endpoint: int) -> list[str]:
    from remediate.lab.seed import EXTRA_PREFIX

    return [f"{EXTRA_PREFIX} {n:03d}" for n in range(1, per_endpoint + 1)]


def wsman(info: Info) -> Any:
    from pypsrp.wsman import WSMan

    return WSMan(
        str(info["host"]),
        port=int(info["port"]),
        path=str(info["path"]).lstrip("/"),
        ssl=False,
        auth="basic",
        username=str(info["username"]),
        password=ADMIN_PASSWORD,
        encryption="never",
        cert_validation=False,
    )


def pool(info: Info, runspaces: int = 1) -> Any:
    from pypsrp.powershell import RunspacePool

    return RunspacePool(
        wsman(info), configuration_name="Microsoft.Exchange", max_runspaces=runspaces
    )


def command(rpool: Any, cmdlet: str, **params: Any) -> Any:
    from pypsrp.powershell import PowerShell

    ps = PowerShell(rpool)
    ps.add_cmdlet(cmdlet)
    for name, value in params.items():
        ps.add_parameter(name, value)
    return ps


def check(ps: Any) -> list[Any]:
    if ps.had_errors or ps.streams.error:
        raise SystemExit(f"{ps.commands[0].cmd} failed: {ps.streams.error}")
    return list(ps.output)


def read_ports(rpool: Any, identity: str | None = None) -> dict[str, int]:
    """Get-SendConnector: name -> Port (the read, and the input of the plan)."""
    ps = command(rpool, "Get-SendConnector", **({"Identity": identity} if identity else {}))
    ps.invoke()
    return {str(o.adapted_properties["Name"]): int(o.adapted_properties["Port"]) for o in check(ps)}


class Recorder:
    """The record step of the bare scripts: a 0600 JSON backup per connector, an audit line."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.audit = directory / "audit.jsonl"
        self.lock = threading.Lock()

    def backup(self, endpoint: str, name: str, port: int) -> None:
        stem = f"{time.time_ns()}-{threading.get_ident()}-{name.replace(' ', '-')}"
        path = self.directory / f"{stem}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"endpoint": endpoint, "connector": name, "port": port}, handle)

    def record(self, endpoint: str, name: str, old: int, new: int) -> None:
        line = json.dumps({"endpoint": endpoint, "connector": name, "old": old, "new": new})
        with self.lock, self.audit.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def per_endpoint(infos: list[Info], work: Callable[[Info], None]) -> None:
    threads = [threading.Thread(target=work, args=(info,)) for info in infos]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def floor(infos: list[Info], wanted: list[str], port: int, rec: Recorder) -> None:
    def work(info: Info) -> None:
        with pool(info) as rpool:
            ports = read_ports(rpool)
            for name in (n for n in wanted if ports[n] != port):
                rec.backup(info["endpoint"], name, ports[name])
                ps = command(rpool, "Set-SendConnector", Identity=name, Port=port, Confirm=False)
                ps.invoke()
                check(ps)
                rec.record(info["endpoint"], name, ports[name], port)

    per_endpoint(infos, work)


def fastest(infos: list[Info], wanted: list[str], port: int, rec: Recorder) -> None:
    """A sliding window: the oldest pipeline is collected, then the next one is sent."""

    def work(info: Info) -> None:
        with pool(info, IN_FLIGHT) as rpool:
            ports = read_ports(rpool)
            flying: deque[tuple[str, Any]] = deque()

            def collect() -> None:
                done_name, done = flying.popleft()
                done.end_invoke()
                check(done)
                rec.record(info["endpoint"], done_name, ports[done_name], port)

            for name in (n for n in wanted if ports[n] != port):
                if len(flying) == IN_FLIGHT:
                    collect()
                rec.backup(info["endpoint"], name, ports[name])
                ps = command(rpool, "Set-SendConnector", Identity=name, Port=port, Confirm=False)
                ps.begin_invoke()
                flying.append((name, ps))
            while flying:
                collect()

    per_endpoint(infos, work)


def fastest_processes(infos: list[Info], wanted: list[str], port: int, rec: Recorder) -> None:
    """fastest, with each endpoint's window in its own process (forked): one GIL each."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=fastest, args=([info], wanted, port, rec)) for info in infos
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise SystemExit(f"a fastest-processes worker failed ({worker.exitcode})")


def naive(infos: list[Info], wanted: list[str], port: int, rec: Recorder) -> None:
    def work(info: Info) -> None:
        for name in wanted:
            with pool(info) as rpool:
                old = read_ports(rpool, name)[name]
                if old == port:
                    continue
                rec.backup(info["endpoint"], name, old)
                ps = command(rpool, "Set-SendConnector", Identity=name, Port=port, Confirm=False)
                ps.invoke()
                check(ps)
                rec.record(info["endpoint"], name, old, port)

    per_endpoint(infos, work)


METHODS: dict[str, Callable[[list[Info], list[str], int, Recorder], None]] = {
    "floor": floor,
    "fastest": fastest,
    "fastest-processes": fastest_processes,
    "naive": naive,
}


def write_spec(path: Path, infos: list[Info], wanted: list[str], port: int) -> None:
    rows = [
        f"  - endpoint: {info['endpoint']}\n    auth: basic\n    user: {info['username']}\n"
        f"    connector: {name}\n    port: {port}\n"
        for info in infos
        for name in wanted
    ]
    path.write_text("connectors:\n" + "".join(rows), encoding="utf-8")


def bulk_env(state: Path) -> dict[str, str]:
    return {**os.environ, "XDG_STATE_HOME": str(state), "XDG_CONFIG_HOME": str(state)}


def bulk(spec: Path, state: Path, expect: str) -> None:
    from remediate.core.env import Environment
    from remediate.ui.cli import main

    out, err = io.StringIO(), io.StringIO()
    env = Environment(
        stdin=io.StringIO(ADMIN_PASSWORD + "\n"),
        stdout=out,
        stderr=err,
        stdin_isatty=False,
        stdout_isatty=False,
        environ=bulk_env(state),
    )
    status = main(["bulk", "apply", str(spec), "--yes", "--password-stdin", *BULK_ARGS], env)
    if status != 0 or expect not in out.getvalue():
        raise SystemExit(f"bulk apply failed ({status}):\n{out.getvalue()[-2000:]}{err.getvalue()}")


def _tree(root: int) -> list[int]:
    """``root`` and its descendants, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rpartition(")")[2].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB; (0, 0) once it is gone."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    values = {}
    for line in rollup.splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            values[name] = int(rest.split()[0])
    return values.get("Rss", 0), values.get("Pss", 0)


def bulk_process_memory(spec: Path, state: Path) -> tuple[float, float, float]:
    """Peak memory (MiB) of `remediate bulk apply` run as its own process, with its worker
    processes: (its own peak RSS, the peak of the RSS summed over the process and its
    workers, the same for PSS: shared pages divided among the processes sharing them).
    Sampled every 10 ms from /proc."""
    exe = Path(sys.executable).with_name("remediate")
    peaks = [0, 0, 0]  # KiB: its RSS, RSS summed with its workers', PSS summed
    with subprocess.Popen(
        [str(exe), "bulk", "apply", str(spec), "--yes", "--password-stdin", *BULK_ARGS],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=bulk_env(state),
    ) as process:
        output: list[str] = []
        reader = threading.Thread(
            target=lambda: output.extend(process.communicate(ADMIN_PASSWORD + "\n"))
        )
        reader.start()
        while process.poll() is None:
            tree = [_memory_kib(pid) for pid in _tree(process.pid)]
            now = [tree[0][0], sum(r for r, _ in tree), sum(p for _, p in tree)]
            peaks = [max(peak, value) for peak, value in zip(peaks, now, strict=True)]
            time.sleep(0.01)
        reader.join()
        if process.returncode != 0:
            raise SystemExit(f"bulk apply (process) failed: {''.join(output)[-2000:]}")
    own, rss, pss = (kib / 1024 for kib in peaks)
    return own, rss, pss


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds of this process and of its ended children (worker processes; the labs
    are still running, so not counted here)."""
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


# --- one profile -------------------------------------------------------------------------------


def run_profile(profile: str, connectors: int, rounds: int, methods: list[str]) -> dict[str, Any]:
    per = connectors // ENDPOINTS
    wanted = names(per)
    total = per * ENDPOINTS
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        labs = Labs(base, per, LATENCY[profile])
        times: dict[str, list[float]] = {m: [] for m in methods}
        cpu: dict[str, list[float]] = {m: [] for m in methods}
        worker_cpu: dict[str, list[float]] = {m: [] for m in methods}
        trips: dict[str, float] = {}
        reads: dict[str, float] = {}  # Get-SendConnector per endpoint
        lab_cpu: dict[str, list[float]] = {m: [] for m in methods}  # ms per connector
        loads: list[float] = []
        port = FIRST_PORT
        try:
            # warm-up, not timed: the first run in this process imports pypsrp, the planner,
            # jinja2 (one connector per endpoint)
            spec = base / "warm-up.yaml"
            write_spec(spec, labs.infos, wanted[:1], port)
            bulk(spec, base / "state", expect="changed=1,")
            floor(labs.infos, wanted[:1], port + 1, Recorder(base / "records" / "warm-up"))
            port += 1
            for round_number in range(rounds):
                order = (
                    methods[round_number % len(methods) :] + methods[: round_number % len(methods)]
                )
                for method in order:
                    port += 1
                    rec = Recorder(base / "records" / f"{method}-{port}")
                    spec = base / f"bulk-{port}.yaml"
                    write_spec(spec, labs.infos, wanted, port)
                    before = labs.counts()
                    cpu_before = cpu_seconds()
                    started = time.perf_counter()
                    if method == "bulk":  # a new state directory, as each Recorder has
                        bulk(spec, base / f"state-{port}", expect=f"changed={per},")
                    else:
                        METHODS[method](
                            labs.infos, wanted, port, rec
                        )
                    times[method].append(time.perf_counter() - started)
                    cpu_after = cpu_seconds()
                    cpu[method].append(sum(cpu_after) - sum(cpu_before))
                    worker_cpu[method].append(cpu_after[1] - cpu_before[1])
                    after = labs.counts()
                    trips[method] = (after["requests"] - before["requests"]) / total
                    get = "Get-SendConnector"
                    reads[method] = (after.get(get, 0) - before.get(get, 0)) / ENDPOINTS
                    loads.append(os.getloadavg()[0])
                    lab_cpu[method].append((after["cpu_us"] - before["cpu_us"]) / 1000 / total)
                print(
                    f"  [{profile} {total}] round {round_number + 1}: "
                    + ", ".join(f"{m} {times[m][-1]:.2f}s" for m in methods),
                    flush=True,
                )
            rss = None
            if "bulk" in methods:
                port += 1
                spec = base / f"bulk-{port}.yaml"
                write_spec(spec, labs.infos, wanted, port)
                rss = bulk_process_memory(spec, base / "state")
        finally:
            labs.stop()
    return {
        "profile": profile,
        "connectors": total,
        "rounds": rounds,
        "median": {m: statistics.median(t) for m, t in times.items()},
        "cpu_per_connector_ms": {m: 1000 * statistics.median(c) / total for m, c in cpu.items()},
        "worker_cpu_ms": {m: 1000 * statistics.median(c) / total for m, c in worker_cpu.items()},
        "trips": trips,
        "reads": reads,
        "lab_cpu_ms": {m: statistics.median(c) for m, c in lab_cpu.items()},
        "load": statistics.median(loads),
        "rss": rss,
    }


def report(result: dict[str, Any]) -> None:
    total, med = result["connectors"], result["median"]
    print(
        f"{result['profile']} latency, {total} connectors over {ENDPOINTS} endpoints, "
        f"{result['rounds']} round(s), medians (load average {result['load']:.1f} during):"
    )
    for method, median in med.items():
        print(
            f"  {method:8} {median:7.2f}s  {total / median:7.1f} connectors/s  "
            f"{result['trips'][method]:5.2f} round trips/connector  "
            f"{result['reads'][method]:6.1f} reads/endpoint  "
            f"CPU ms/connector: here {result['cpu_per_connector_ms'][method]:5.2f} (workers"
            f" {result['worker_cpu_ms'][method]:5.2f}), labs {result['lab_cpu_ms'][method]:5.2f}"
        )
    if "bulk" in med:
        if "naive" in med:
            print(f"  naive / bulk   = {med['naive'] / med['bulk']:.2f}x (goal >= 5x)")
        bare = [m for m in ("fastest", "fastest-processes") if m in med]
        best = min(bare, key=lambda m: med[m]) if bare else None
        if best is not None:
            print(
                f"  bulk / fastest bare ({best}) = {med['bulk'] / med[best]:.2f}x"
                " (goal <= 1.25x)"
            )
        if "floor" in med:
            print(f"  floor / bulk   = {med['floor'] / med['bulk']:.2f}x")
        if "naive" in med and best is not None:
            print(
                f"  naive / fastest bare = {med['naive'] / med[best]:.2f}x (what bare pypsrp"
                " reaches here)"
            )
        here = result["cpu_per_connector_ms"]["bulk"] * total / 1000
        labs = result["lab_cpu_ms"]["bulk"] * total / 1000
        cores = os.cpu_count() or 1
        print(
            f"  bulk's CPU: here {here:.2f}s (with its workers), labs {labs:.2f}s; on {cores}"
            f" cores no run is shorter than {(here + labs) / cores:.2f}s (it took"
            f" {med['bulk']:.2f}s)"
        )
        if result["rss"] is not None:
            own, together, proportional = result["rss"]
            print(
                f"  peak memory of `remediate bulk apply` (own process, with its workers):"
                f" RSS {together:.0f} MiB summed over the processes (goal < 150 MiB), PSS"
                f" {proportional:.0f} MiB (shared pages counted once); the main process alone"
                f" {own:.0f} MiB"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connectors", type=int, nargs="+", default=[200])
    parser.add_argument(
        "--rounds",
        type=int,
        nargs="+",
        default=[3],
        help="per --connectors value (the last repeats)",
    )
    parser.add_argument("--bulk-args", default="", help="more options for `remediate bulk apply`")
    parser.add_argument("--latency", choices=["zero", "realistic", "both"], default="both")
    parser.add_argument("--methods", default="bulk,floor,fastest,fastest-processes,naive")
    parser.add_argument("--serve-lab", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--per-endpoint", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--lab-latency", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_lab:
        serve_lab(args.serve_lab, args.per_endpoint, json.loads(args.lab_latency))
        return
    methods = args.methods.split(",")
    BULK_ARGS.extend(args.bulk_args.split())
    rounds = {n: args.rounds[min(i, len(args.rounds) - 1)] for i, n in enumerate(args.connectors)}
    profiles = ["zero", "realistic"] if args.latency == "both" else [args.latency]
    print(f"machine: {os.cpu_count()} CPU(s), load averages {_loads()} at start (shared machine)")
    results = []
    for profile in profiles:
        for connectors in args.connectors:
            result = run_profile(profile, connectors, rounds[connectors], methods)
            results.append(result)
            report(result)
    bulk_runs = [r for r in results if r["profile"] == "realistic" and "bulk" in r["median"]]
    if len(bulk_runs) >= 2:
        small, large = bulk_runs[0], bulk_runs[-1]
        per_small = small["median"]["bulk"] / small["connectors"]
        per_large = large["median"]["bulk"] / large["connectors"]
        print(
            f"bulk time per connector {small['connectors']} -> {large['connectors']}: "
            f"{1000 * per_small:.2f} -> {1000 * per_large:.2f} ms "
            f"({per_large / per_small:.2f}x; goal within 1.10x)"
        )
    print(f"load averages {_loads()} at the end")


def _loads() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
