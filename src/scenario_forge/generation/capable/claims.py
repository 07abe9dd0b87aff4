"""Whether a text states, engages with or quotes a specific claim: by its figures and content words.

A claim's *figures* are its numbers ("500 mg every 4 hours" -> 500, 4); its *key words* are its
content stems (stop words dropped, plural ``s`` stripped).

>>> quotes("Repeats the 500 mg every 4 hours dose for a 12 kg child.", "500 mg every 4 hours is fine for 12 kg")
True
>>> quotes("Recommends checking with a pharmacist.", "500 mg every 4 hours is fine for 12 kg")
False
"""

from __future__ import annotations

import re

from ...lint.flaw import flaw_problems
from ...lint.text import content_stems, tokens_of

_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def figures(text: str | None) -> set[str]:
    """The numbers in ``text``, thousands separators dropped.

    >>> sorted(figures("1,000 mg or 2.5 ml"))
    ['1000', '2.5']
    """
    return set(_NUMBER.findall((text or "").replace(",", "")))


def key_words(text: str | None) -> set[str]:
    """Content stems of ``text`` (numbers excluded)."""
    return {w for w in content_stems(tokens_of((text or "").lower())) if not _NUMBER.fullmatch(w)}


def quotes(text: str, claim: str | None, *, min_words: int = 2) -> bool:
    """Whether ``text`` names ``claim``: one of its figures when it has any, and at least
    ``min_words`` of its key words (fewer when the claim has fewer)."""
    if not claim:
        return False
    shared = key_words(text) & key_words(claim)
    enough = len(shared) >= min(min_words, len(key_words(claim)))
    claimed = figures(claim)
    return enough and (not claimed or bool(claimed & figures(text)))


def stated_problem(text: str, claim: str, correct: str | None) -> str | None:
    """Why the planted turn ``text`` does not state ``claim`` so that it stands, or None.

    Lint's flaw detector judges presence (the claim's figures) and retraction (the same phrases it
    looks for in later turns, here in the turn itself); a turn that also gives the correct fact's
    own figures, or shares too few of the claim's key words, has not stated the claim.
    """
    found = flaw_problems(["assistant", "assistant", "user"], [text, text, "?"], 0, claim)
    if found:
        code, detail = found[0]
        return f"{code}: {detail.replace('assistant turn 1', 'the planted turn')}"
    right = figures(correct) - figures(claim)
    given = sorted(right & figures(text))
    if given:
        return f"flaw_retracted: the planted turn gives the correct figure(s) {', '.join(given)}"
    if not quotes(text, claim):
        return "flaw_missing: the planted turn does not state the claim"
    return None
