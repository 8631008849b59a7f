"""Event parsing on hostile input: time at 1x and 4x the size, and the ratio.

The inputs of issue 13 (each once at the size of the report and once 4x larger):

  xml-open    repeated "<Event> " with no closing tag (320 KB took 82 s before)
  prefixes    repeated 2016 message prefixes that never complete (420 KB took 53 s)
  2002-open   repeated "Send connector x" with no ": an error occurred ..." tail
  date-spaces a "Date:" label followed by a long run of blanks
  export      a well-formed wevtutil export of real-looking 2016 and 2002 events

Linear time shows as a ratio near 4 (quadratic would be near 16). Each figure is the best
of ROUNDS runs of ``remediate.diagnose.events.parse_any``
(what ``diagnose`` and ``fix --event-file``
call). Usage: .venv/bin/python benchmarks/events.py [--rounds N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from remediate.core.errors import UsageError
from remediate.diagnose.events import parse_any

EXPORT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "events" / "export.xml"
PREFIX = "An authentication credential initialization error x occurred with Send connector y. "


def inputs() -> dict[str, Callable[[int], str]]:
    export = EXPORT.read_text(encoding="utf-8")
    return {
        "xml-open": lambda scale: "<Event> " * (40_000 * scale),
        "prefixes": lambda scale: PREFIX * (5_000 * scale),
        "2002-open": lambda scale: "Send connector x" * (25_000 * scale),
        "date-spaces": lambda scale: "Log Name: Application\nDate: 1" + " \t" * (200_000 * scale),
        "export": lambda scale: export * (100 * scale),
    }


def best(text: str, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        try:
            parse_any(text, "benchmark")
        except UsageError:
            pass  # "no <Event> elements" is the right answer for an export never closed
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{'input':<12} {'1x size':>10} {'1x s':>8} {'4x s':>8} {'ratio':>6}")
    for name, make in inputs().items():
        small, large = make(1), make(4)
        one, four = best(small, args.rounds), best(large, args.rounds)
        ratio = four / one if one else float("nan")
        print(f"{name:<12} {len(small):>10} {one:>8.4f} {four:>8.4f} {ratio:>6.1f}")


if __name__ == "__main__":
    main()
