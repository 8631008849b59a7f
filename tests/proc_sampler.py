"""Samples /proc for secrets: the command line and environment of every process, read again
and again in a thread while a test runs (shared by the canary tests)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path


class ProcSampler:
    """Reads /proc/<pid>/cmdline and environ of every process, again and again, in a thread;
    remembers the pids whose text held a secret, the command lines it saw and, per pid, the
    last command line read (to tell which processes ran meanwhile, and how they started)."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = [s.encode() for s in secrets]
        self.hits: list[tuple[int, str, bytes]] = []
        self.seen: set[bytes] = set()
        self.commands: dict[int, bytes] = {}
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> ProcSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(0.005)

    def sample(self) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            for part in ("cmdline", "environ"):
                try:
                    data = Path(entry.path, part).read_bytes()
                except OSError:  # gone already, or not ours to read
                    continue
                if part == "cmdline":
                    self.seen.add(data)
                    if data:  # a zombie's is empty
                        self.commands[int(entry.name)] = data
                for secret in self.secrets:
                    if secret in data:
                        self.hits.append((int(entry.name), part, data))
        self.rounds += 1
