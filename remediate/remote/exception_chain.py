"""Walking an exception's chain: pypsrp, requests and urllib3 wrap the real cause."""

from __future__ import annotations

from collections.abc import Iterator


def causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        for arg in getattr(current, "args", ()):
            if isinstance(arg, BaseException):
                yield from causes(arg)
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            yield from causes(reason)
        current = current.__cause__ or current.__context__


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
