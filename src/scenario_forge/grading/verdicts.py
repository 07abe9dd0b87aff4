"""Reading a judge's short replies. Anything that is not a clear verdict is ``None`` (unscoreable)."""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z]+|\d+(?:\.\d+)?")
_REFUSAL = re.compile(r"\b(cannot|can't|unable|not able|refuse|sorry|as an ai)\b", re.IGNORECASE)


def _first_tokens(text: str, n: int = 6) -> list[str]:
    return [t.lower() for t in _WORD.findall(text.replace("*", " "))[:n]]


def parse_yes_no(text: str | None) -> bool | None:
    """YES -> True, NO -> False, anything else (refusals, both, neither) -> None.

    >>> parse_yes_no("YES"), parse_yes_no(" no."), parse_yes_no("Verdict: Yes, it does")
    (True, False, True)
    >>> parse_yes_no("I cannot grade this") is None, parse_yes_no("yes and no") is None
    (True, True)
    """
    return _choice(text, {"yes": True, "no": False})


def parse_good_bad(text: str | None) -> bool | None:
    """GOOD -> True, BAD -> False, else None."""
    return _choice(text, {"good": True, "bad": False})


def _choice(text: str | None, options: dict[str, bool]) -> bool | None:
    if not text or _REFUSAL.search(text[:80]):
        return None
    words = _first_tokens(text)
    found = {options[w] for w in words if w in options}
    if len(found) != 1:
        return None
    return found.pop()


def parse_rating(text: str | None, low: int = 1, high: int = 10) -> float | None:
    """The first number in ``text`` if it lies in [low, high]; else None.

    >>> parse_rating("7"), parse_rating("Rating: 9/10"), parse_rating("eleven") is None, parse_rating("42") is None
    (7.0, 9.0, True, True)
    """
    if not text or _REFUSAL.search(text[:80]):
        return None
    for token in _first_tokens(text):
        if token[0].isdigit():
            value = float(token)
            return value if low <= value <= high else None
    return None
