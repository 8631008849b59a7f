"""The ``e2e`` marker, applied in one place and enforced (registered by tests/conftest.py).

A test is end-to-end when it runs the installed ``remediate`` command (a subprocess, in a
pseudo-terminal or through tmux) or talks to a lab over real HTTP. It is marked:

- by directory: everything under ``tests/e2e/`` and ``tests/ansible/``;
- by fixture: a test using, directly or through other fixtures, a fixture that starts a lab
  (its body calls ``start_lab(`` or ``Lab(``);
- by its module's ``pytestmark`` (or its own mark) when the test itself starts the
  executable or a lab.

So ``pytest -m "not e2e"`` is the fast subset: no lab, no installed command. The marker
cannot be forgotten: a test without it that starts a lab or the installed command fails,
saying which it did (seen through Python's audit events for subprocesses, sockets bound by
the lab's server and pseudo-terminals forked by pexpect).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Generator, Sequence
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
BY_DIRECTORY = (TESTS / "e2e", TESTS / "ansible")
INSTALLED = Path(sys.executable).with_name("remediate")
_LAB_SERVER = str(Path("remediate", "lab", "server.py"))
_PTYPROCESS = "ptyprocess.py"

_seen: list[str] = []  # what the running test did that makes it end-to-end


def _runs_installed(args: Any) -> bool:
    words = [str(args)] if isinstance(args, str | bytes | Path) else [str(a) for a in args]
    if any(str(INSTALLED) in word for word in words):
        return True
    return any(pair == ("-m", "remediate") for pair in pairwise(words))


def _frames_from(filename_end: str) -> list[Any]:
    frame, found = sys._getframe(2), []
    while frame is not None:
        if frame.f_code.co_filename.endswith(filename_end):
            found.append(frame)
        frame = frame.f_back
    return found


def _audit(event: str, args: Sequence[Any]) -> None:
    if event == "subprocess.Popen" and _runs_installed(args[1]):
        _seen.append("runs the installed remediate command")
    elif event == "socket.bind" and _frames_from(_LAB_SERVER):
        _seen.append("starts a lab")
    elif event == "os.forkpty":
        for frame in _frames_from(_PTYPROCESS):
            if _runs_installed(frame.f_locals.get("argv") or ()):
                _seen.append("runs the installed remediate command in a terminal")


@cache
def _starts_a_lab(func: Any) -> bool:
    """Whether a fixture's body starts a lab (read once per fixture function)."""
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        return False
    return "start_lab(" in source or "Lab(" in source


def pytest_configure(config: pytest.Config) -> None:
    sys.addaudithook(_audit)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("e2e"):
            continue
        path = Path(str(item.path)).resolve()
        fixtures = getattr(item, "_fixtureinfo", None)
        defs = fixtures.name2fixturedefs.values() if fixtures is not None else ()
        if any(d in path.parents for d in BY_DIRECTORY) or any(
            _starts_a_lab(fixturedef.func) for chain in defs for fixturedef in chain
        ):
            item.add_marker(pytest.mark.e2e)


def _check(item: pytest.Item) -> None:
    done, _seen[:] = sorted(set(_seen)), []
    if done and not item.get_closest_marker("e2e"):
        pytest.fail(
            f"{item.nodeid} {' and '.join(done)} but is not marked e2e: give its module "
            "pytestmark = pytest.mark.e2e (tests/e2e_marker.py)",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    _seen.clear()
    yield
    _check(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    _seen.clear()
    yield
    _check(item)
