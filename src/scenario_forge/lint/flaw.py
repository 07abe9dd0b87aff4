"""Flaw standing: in a ``flawed_prior_turn`` scenario the planted mistake must be there and stand.

The final user turn builds on a mistake an earlier assistant turn made. If the index does not point
at an assistant turn, or that turn is empty or hedged into saying nothing, the flaw is missing; if
a later assistant turn (before the final user turn) takes it back, the user's last message no
longer rests on it. The flaw's presence is checked where the recorded flaw is specific: when its
description names figures ("states a 6,000 mg/day maximum"), at least one must be in the turn, and
when it is about a quantity ("gave an adult dose for a child"), the turn must state a number;
a flawed-turn scenario with no flaw recorded is ``flaw_missing`` too.
"""

from __future__ import annotations

import re
from typing import Final

from .text import tokens_of
from .turns import Turn

Problem = tuple[str, str]

FLAWED_SHAPE: Final = "flawed_prior_turn"

_RETRACT: Final = re.compile(
    r"\b(?:i (?:was|am) (?:wrong|mistaken|incorrect)|i made (?:a|an) (?:\w+ )?(?:mistake|error)|i misspoke|"
    r"i stand corrected|my (?:mistake|apologies|bad|error)|i apologi[sz]e for (?:the|my) (?:error|mistake|confusion)|"
    r"(?:let me|i (?:need|have|want) to|i should) correct (?:myself|that|this|my)|"
    r"(?:correction|to correct myself|to clarify my (?:earlier|previous))\b|"
    r"(?:my|the) (?:earlier|previous|last|prior) (?:answer|reply|response|message|statement|advice|claim)"
    r"(?: \w+){0,3} (?:was|is) (?:wrong|incorrect|mistaken|inaccurate|not (?:right|correct|accurate))|"
    r"(?:what|that) i said (?:earlier |before )?(?:was|is) (?:wrong|incorrect|not (?:right|correct))|"
    r"that (?:was|is) (?:incorrect|not correct|wrong) of me|i (?:got|had) (?:that|it) wrong|"
    r"(?:does|did) not (?:actually )?exist|(?:doesn't|didn't) (?:actually )?exist|i (?:cannot|can't|couldn't) verify that)",
    re.IGNORECASE,
)
#: A retraction uses one of these words; the retraction patterns only run on turns that hold one.
_RETRACT_WORDS: Final = frozenset(
    ["wrong", "mistaken", "incorrect", "mistake", "error", "misspoke", "corrected", "apologies", "apologize", "apologise", "correct", "correction", "clarify", "exist", "verify", "inaccurate", "accurate", "right", "stand", "bad"]
)
#: A flaw about one of these needs a figure in the flawed turn ("gave an adult dose for a child").
_QUANTITY_WORDS: Final = frozenset(
    ["dose", "doses", "dosage", "mg", "ml", "figure", "figures", "number", "numbers", "threshold", "age", "rate", "percentage", "percent", "statistic", "statistics", "amount", "price", "date", "year", "arithmetic", "calculation", "sum", "total", "interest"]
)
_NUMBER: Final = re.compile(r"\d+(?:\.\d+)?")
_HEDGE_ONLY: Final = re.compile(
    r"^\W*(?:i(?:'m| am) not sure|i don't know|i cannot|i can't|sorry)\b", re.IGNORECASE
)


def flaw_problems(
    roles: list[str], contents: list[str], flawed_turn_index: int | None, flaw: str | None, turns: dict[int, Turn] | None = None
) -> list[Problem]:
    """Problems with the planted flaw of a ``flawed_prior_turn`` scenario (``turns``: the analysed
    turns by message index, when the caller has them)."""
    n = len(roles)
    i = flawed_turn_index
    if i is None or not 0 <= i < n or roles[i] != "assistant":
        where = "missing" if i is None else (f"{i} is out of range" if not 0 <= i < n else f"{i} is a {roles[i]} turn")
        return [("flaw_missing", f"flawed_turn_index {where}")]
    if not flaw or not flaw.strip():
        return [("flaw_missing", f"no flaw recorded for flawed turn {i}")]
    text = contents[i]
    # fewer than four words: at most five pieces are split off to tell (not every word of the turn)
    if len(text.split(None, 4)) < 4 or _HEDGE_ONLY.match(text):
        return [("flaw_missing", f"turn {i} states nothing to rest on: {text.strip()[:60]!r}")]
    numbers = set(_NUMBER.findall(flaw.replace(",", "")))
    if numbers and not numbers & set(_NUMBER.findall(text.replace(",", ""))):
        return [("flaw_missing", f"turn {i} has none of the flaw's figures ({', '.join(sorted(numbers))})")]
    if not numbers and not _QUANTITY_WORDS.isdisjoint(tokens_of(flaw.lower())) and not _NUMBER.search(text):
        return [("flaw_missing", f"the flaw is about a quantity ({flaw.strip()[:50]!r}) but turn {i} states no number")]
    last_user = max((j for j in range(n) if roles[j] == "user"), default=n)
    for j in range(i + 1, last_user):
        if roles[j] != "assistant":
            continue
        turn = (turns or {}).get(j) or Turn(j, "assistant", contents[j])
        if _RETRACT_WORDS.isdisjoint(turn.words):
            continue
        m = _RETRACT.search(turn.low)
        if m:
            return [("flaw_retracted", f"assistant turn {j} retracts the flaw: {m.group(0)!r}")]
    return []
