"""psrpcore's attribute lookup in constant time, for the lab's process.

``psrpcore.types.PSObject.__getattribute__`` builds a dict of all the object's properties on
every attribute access, before it tries the plain attribute; ``isinstance`` on a PSObject
goes through it too. Deserializing one CreatePipeline message makes about 60 such objects
and thousands of lookups: about a third of the lab's CPU per Set-SendConnector (issue 15).

``install()`` replaces the method with one that gives the same answers: the plain attribute
first, as psrpcore's does, and only when there is none (or for ``__dict__``, which psrpcore
merges with the properties) psrpcore's own method. Nothing else in the process uses psrpcore
(the tool speaks pypsrp), and the answers do not change (tests/lab/test_psrpcore_speed.py).
"""

from __future__ import annotations

from typing import Any

from psrpcore.types import PSObject

ORIGINAL = PSObject.__getattribute__


def lookup(self: PSObject, item: str) -> Any:
    """``PSObject.__getattribute__`` with the plain attribute tried first."""
    if item != "__dict__":
        try:
            return super(PSObject, self).__getattribute__(item)
        except AttributeError:
            pass
    return ORIGINAL(self, item)


def install() -> None:
    """Use ``lookup`` for every PSObject (idempotent)."""
    setattr(PSObject, "__getattribute__", lookup)  # noqa: B010 - mypy refuses a method assignment
