"""Fixed-text templates with fields, matched in linear time (for event message bodies).

A template alternates literal text and field names: ``("Send connector ", "connector",
": an error occurred while connecting to ", "endpoint")``. A field is the shortest non-empty
text up to the next literal (as a lazy regex group would take it, without backtracking into
longer ones); the last field ends at the first ``.`` followed by a space or the end
(``last_ends_at_sentence``) or at the first space. Each literal's occurrences are found once
(``str.find`` forward) and looked up by bisection, so a search costs O(n log n) however the
text is crafted, where the regex it replaces took quadratic time on repeated prefixes.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Match:
    start: int
    end: int
    text: str
    fields: dict[str, str]

    def __getitem__(self, name: str) -> str:
        return self.fields[name]


class _Occurrences:
    """Where each phrase occurs in one text, computed once per phrase."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._found: dict[str, list[int]] = {}

    def positions(self, phrase: str) -> list[int]:
        found = self._found.get(phrase)
        if found is None:
            found = []
            at = self.text.find(phrase)
            while at >= 0:
                found.append(at)
                at = self.text.find(phrase, at + 1)
            self._found[phrase] = found
        return found

    def next(self, phrase: str, start: int) -> int | None:
        """The first occurrence of ``phrase`` at or after ``start``."""
        found = self.positions(phrase)
        index = bisect.bisect_left(found, start)
        return found[index] if index < len(found) else None

    def inside(self, phrase: str, start: int, end: int) -> bool:
        """Whether ``phrase`` occurs wholly within text[start:end]."""
        at = self.next(phrase, start)
        return at is not None and at + len(phrase) <= end


@dataclass(frozen=True)
class Template:
    parts: tuple[str, ...]  # literal, field, literal, field, ... (starts with a literal)
    last_ends_at_sentence: bool = True
    limits: Mapping[str, int] = field(default_factory=dict)  # field -> longest length
    forbid: Mapping[str, str] = field(default_factory=dict)  # field -> text it may not hold

    def search(self, text: str) -> Match | None:
        return next(self.finditer(text), None)

    def finditer(self, text: str) -> Iterator[Match]:
        """Non-overlapping matches, left to right."""
        occurrences = _Occurrences(text)
        first = self.parts[0]
        position = 0
        while (start := occurrences.next(first, position)) is not None:
            found = self._at(occurrences, start)
            if found is None:
                position = start + 1
                continue
            if found is _STOP:
                return
            assert isinstance(found, Match)
            yield found
            position = found.end

    def _at(self, occurrences: _Occurrences, start: int) -> Match | object | None:
        """The match starting at ``start``; None when this start fails, ``_STOP`` when no
        later start can match either (a literal that never occurs again)."""
        text = occurrences.text
        fields: dict[str, str] = {}
        cursor = start + len(self.parts[0])
        names = self.parts[1::2]
        literals = self.parts[2::2]
        for index, name in enumerate(names):
            if index < len(literals):
                literal = literals[index]
                end = occurrences.next(literal, cursor + 1)  # the field is not empty
                if end is None:
                    return _STOP
                after = end + len(literal)
            else:
                end = self._last_end(text, occurrences, cursor)
                if end is None:
                    return None
                after = end + (1 if self.last_ends_at_sentence else 0)
            limit = self.limits.get(name)
            if limit is not None and end - cursor > limit:
                return None
            banned = self.forbid.get(name)
            if banned is not None and occurrences.inside(banned, cursor, end):
                return None
            fields[name] = text[cursor:end]
            cursor = after
        return Match(start, cursor, text[start:cursor], fields)

    def _last_end(self, text: str, occurrences: _Occurrences, cursor: int) -> int | None:
        """Where the last field ends: before ". " / a final ".", or at the next space."""
        if self.last_ends_at_sentence:
            end = occurrences.next(". ", cursor + 1)
            if end is None:
                end = len(text) - 1 if text.endswith(".") and len(text) - 1 > cursor else None
            return end
        if cursor >= len(text) or text[cursor] == " ":
            return None
        space = occurrences.next(" ", cursor)
        return len(text) if space is None else space


_STOP = object()
