"""Reading a judge's replies. Anything that is not a clear verdict is ``None`` (unscoreable).

A rubric verdict comes in one of three shapes (:func:`parse_verdict`):

- JSON, as HealthBench's grader asks for it: ``{"explanation": "...", "criteria_met": true}``
  (optionally inside a Markdown code fence); ``criteria_met`` must be a JSON boolean;
- free text (an explanation) whose *last* non-empty line is the verdict: ``YES`` or ``NO``, alone or
  after a label (``Verdict: NO``), or a short line that starts or ends with it;
- one word (``YES`` / ``NO``): the short form, a one-line reply of the same rule.
"""

from __future__ import annotations

import json
import re

_WORD = re.compile(r"[A-Za-z]+|\d+(?:\.\d+)?")
_REFUSAL = re.compile(r"\b(cannot|can't|unable|not able|refuse|sorry|as an ai)\b", re.IGNORECASE)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL | re.IGNORECASE)
_YES_NO = {"yes": True, "no": False}


def _first_tokens(text: str, n: int = 6) -> list[str]:
    return [t.lower() for t in _WORD.findall(text.replace("*", " "))[:n]]


def parse_yes_no(text: str | None) -> bool | None:
    """YES -> True, NO -> False, anything else (refusals, both, neither) -> None.

    >>> parse_yes_no("YES"), parse_yes_no(" no."), parse_yes_no("Verdict: Yes, it does")
    (True, False, True)
    >>> parse_yes_no("I cannot grade this") is None, parse_yes_no("yes and no") is None
    (True, True)
    """
    return _choice(text, _YES_NO)


def parse_json_verdict(text: str) -> bool | None:
    """``criteria_met`` of a JSON reply ``{"explanation": str, "criteria_met": bool}``, else None.

    >>> parse_json_verdict('{"explanation": "It names the risk.", "criteria_met": true}')
    True
    >>> parse_json_verdict('```json\\n{"explanation": "No DOI given.", "criteria_met": false}\\n```')
    False
    >>> [parse_json_verdict(t) for t in ('{"criteria_met": "true"}', '{"explanation": "x"}', '{"expl', '[true]')]
    [None, None, None, None]
    """
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    met = data.get("criteria_met")
    if not isinstance(met, bool):  # "true", 1, null: not a verdict (HealthBench asks again too)
        return None
    explanation = data.get("explanation")
    if explanation is not None and not isinstance(explanation, str):
        return None
    return met


def _verdict_line(line: str) -> bool | None:
    """A YES/NO line: the word among its first tokens or as its last word, one value only."""
    if _REFUSAL.search(line):
        return None
    words = [t.lower() for t in _WORD.findall(line.replace("*", " "))]
    if not words:
        return None
    found = {_YES_NO[w] for w in words if w in _YES_NO}
    if len(found) != 1:
        return None
    if any(w in _YES_NO for w in words[:6]) or words[-1] in _YES_NO:
        return found.pop()
    return None


def parse_verdict(text: str | None) -> bool | None:
    """A rubric verdict in any accepted shape (see the module docstring): True (met), False (not
    met) or None (unscoreable).

    >>> parse_verdict("YES"), parse_verdict("no."), parse_verdict("**NO**")
    (True, False, False)
    >>> parse_verdict("The answer gives a made-up DOI, so the bad behaviour is present.\\nVerdict: YES")
    True
    >>> parse_verdict('{"explanation": "It refers the user to a pharmacist.", "criteria_met": true}')
    True
    >>> [parse_verdict(t) for t in ("", None, "yes and no", "The answer is fine.", "I cannot grade this.")]
    [None, None, None, None, None]
    >>> parse_verdict("YES, it names the risk.\\nBut it also says something else") is None  # the last line decides
    True
    """
    if not text or not text.strip():
        return None
    body = text.strip()
    if body.startswith(("{", "```")):
        return parse_json_verdict(body)
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    return _verdict_line(lines[-1])


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
