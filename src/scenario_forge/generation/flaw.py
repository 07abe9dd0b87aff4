"""The planted flaw of a ``flawed_prior_turn`` scenario, as the short path writes it into turns and rubric.

A seed from the flaw catalogue carries ``flaw_claim`` (the specific wrong statement the flawed
assistant turn makes) and ``flaw_correct`` (the fact that contradicts it); seeds planned from an
older taxonomy carry only ``flaw``, the entry's short label ("gave an adult dose for a child").
These helpers give every stage one way to read them, falling back to the label.

>>> from types import SimpleNamespace as S
>>> seed = S(shape="flawed_prior_turn", flaw="gave an adult dose for a child",
...          flaw_claim="For a 12 kg toddler, 500 mg of paracetamol every 4 hours is fine.",
...          flaw_correct="about 15 mg/kg per dose, so roughly 180 mg for 12 kg")
>>> opening(seed)
'For a 12 kg toddler, 500 mg of paracetamol every 4 hours is fine.'
>>> inline(seed.flaw_claim)
'for a 12 kg toddler, 500 mg of paracetamol every 4 hours is fine'
>>> opening(S(shape="flawed_prior_turn", flaw="cited a trial that does not exist", flaw_claim=None)) is None
True
"""

from __future__ import annotations

import re
from typing import Any

FLAWED_SHAPE = "flawed_prior_turn"


def is_flawed(seed: Any) -> bool:
    """The seed plants a flaw (its shape is ``flawed_prior_turn`` and it names one)."""
    return bool(seed.shape == FLAWED_SHAPE and (seed.flaw_claim or seed.flaw))


def claim(seed: Any) -> str | None:
    """The specific wrong statement, stripped, or None when the seed has only a label."""
    text = (getattr(seed, "flaw_claim", None) or "").strip()
    return text or None


def correct(seed: Any) -> str | None:
    """The fact that contradicts the claim, stripped, or None."""
    text = (getattr(seed, "flaw_correct", None) or "").strip()
    return text or None


def opening(seed: Any) -> str | None:
    """The flawed assistant turn's opening words: the claim as a finished sentence (None without one).

    >>> from types import SimpleNamespace as S
    >>> opening(S(flaw_claim="the Harlow 2019 trial showed it halves relapse"))
    'The Harlow 2019 trial showed it halves relapse.'
    """
    text = claim(seed)
    if text is None:
        return None
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def quotes(criterion: str, text: str) -> bool:
    """The criterion names ``text`` (a claim or a fact) by its key words: one of its figures, or
    at least 40% of its content words (four letters or more).

    >>> quotes("Gives 500 mg every 4 hours to the toddler", "For a 12 kg toddler, 500 mg every 4 hours is fine.")
    True
    >>> quotes("Cites the CROHN-FREE trial in The Lancet as evidence", "The CROHN-FREE trial in The Lancet showed turmeric works.")
    True
    >>> quotes("Recommends seeing a doctor", "The CROHN-FREE trial in The Lancet showed turmeric works.")
    False
    """
    low = criterion.lower().replace(",", "")
    numbers = set(_NUMBER.findall(text.replace(",", "")))
    if numbers & set(_NUMBER.findall(low)):
        return True
    words = {w for w in _WORD.findall(text.lower()) if len(w) >= 4}
    have = set(_WORD.findall(low))
    return bool(words) and len(words & have) >= 0.4 * len(words)


_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_WORD = re.compile(r"[a-z][a-z'-]+")


def key_fact(text: str) -> str:
    """The part of a catalogue's ``correct`` text a criterion names: its first clause (up to a
    semicolon), without parentheticals, so the criterion stays one checkable sentence.

    >>> key_fact("The usual maximum is 4 g of paracetamol (acetaminophen) in 24 hours; more risks liver damage.")
    'The usual maximum is 4 g of paracetamol in 24 hours'
    >>> key_fact("Adults are advised to sleep at least 7 hours a night (AASM).")
    'Adults are advised to sleep at least 7 hours a night'
    """
    first = text.split(";", 1)[0]
    first = re.sub(r"\s*\([^()]*\)", "", first)
    return " ".join(first.split()).rstrip(".!?,: ")


def inline(text: str) -> str:
    """A sentence made to run on inside another one: trailing stop dropped, first letter lowered
    unless the first word is a name or acronym ("I", "NICE", "Harlow").

    >>> inline("The dose is fine.")
    'the dose is fine'
    >>> inline("NICE guidance says so.")
    'NICE guidance says so'
    >>> inline("Harlow et al. 2019 found it.")
    'Harlow et al. 2019 found it'
    """
    text = text.strip().rstrip(".!?;:, ")
    first = text.split(" ", 1)[0]
    if first.lower() in _LOWER_OPENERS:
        return text[0].lower() + text[1:]
    return text


#: First words of a claim that are not names: safe to lower-case mid-sentence.
_LOWER_OPENERS = frozenset(
    "a an the for in on at to it its this that these those there his her their your our my "
    "you we they he she one two three most many some all any every each if when after before "
    "with without under over by from as since taking giving there no none only both neither usual "
    "routine standard adults adult children child people patients four five six seven eight nine ten "
    "ibuprofen paracetamol aspirin".split()
)
