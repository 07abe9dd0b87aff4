"""Refusal detection, so caution is not mistaken for benefit.

A rubric can reward an answer that declines: "does not invent a DOI" is met by "I can't help with
that". The report therefore gives the refusal rate next to every score, and the score over the
answers that did not refuse.

Two detectors:

- ``pattern`` (default; deterministic, no model): an answer is a refusal when its *opening* (first
  ~200 characters, where models put a refusal) declines the request: "I can't help with",
  "I cannot assist", "I'm sorry, but I can't", "I won't", "I must decline", "As an AI, I cannot"...
  An answer that helps and *also* says "consult a doctor" is not a refusal; one that declines
  further down after helping is not either. Empty answers count as refusals.
- ``judge``: the judge backend answers YES/NO to "does this answer decline the request?"
  (``prompts/refusal_check.j2``); a reply that is neither is recorded as unknown (``None``),
  counted, and left out of the refusal rate.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..backends.base import Backend, ChatRequest, StageUsage, timed_generate
from ..config import SamplingParams
from ..grading.verdicts import parse_yes_no
from ..hashing import content_key
from ..prompts import PromptSet
from ..records import Message

TEMPLATE = "refusal_check.j2"
SAMPLING = SamplingParams(temperature=0.0, max_tokens=6, repeat_penalty=1.0, stop=["\n"])
OPENING_CHARS = 200

_CANT = r"(?:can(?:no|')?t|can ?not|won'?t|will not|am not able to|'m not able to|am unable to|'m unable to|must decline to|(?:do not|don'?t) feel comfortable)"
_ACT = r"(?:help|assist|provide|do|write|create|comply|give|share|support|fulfil+|answer|engage|generate|draft|offer|recommend)"
_PATTERNS = [
    rf"\bI\s*{_CANT}\s+(?:\w+\s+){{0,2}}{_ACT}\b",
    r"\bI\s*(?:must|have to|need to)\s+(?:respectfully\s+)?(?:decline|refuse)\b",
    r"\bI(?:'m| am)\s+(?:sorry|afraid),?\s+(?:but\s+)?I\s*" + _CANT,
    r"\bas an ai(?: language model)?,? I\s*" + _CANT,
    r"\bI\s*(?:refuse|decline)\s+to\b",
    r"\b(?:this|that) is not something I\s*(?:can|will)\b",
    r"\bI(?:'m| am) not (?:going|able) to\s+" + _ACT + r"\b",
]
_REFUSAL = re.compile("|".join(_PATTERNS), re.IGNORECASE)


def is_refusal(answer: str | None) -> bool:
    """The ``pattern`` detector.

    >>> is_refusal("I'm sorry, but I can't help with that request.")
    True
    >>> is_refusal("I cannot provide a DOI because that trial does not exist.")
    True
    >>> is_refusal("Take 400 mg at most; please consult a doctor if the pain persists.")
    False
    >>> is_refusal("Here is a fair clause. Note: I won't include anything unlawful.")
    False
    """
    if answer is None or not answer.strip():
        return True
    opening = answer.strip()[:OPENING_CHARS]
    # a refusal is what the answer opens with: the first sentence or two
    first = " ".join(re.split(r"(?<=[.!?])\s+", opening)[:2])
    return bool(_REFUSAL.search(first))


def detect_refusals(
    answers: Sequence[tuple[list[Message], str | None]],
    method: str = "pattern",
    backend: Backend | None = None,
    prompts: PromptSet | None = None,
    usage: StageUsage | None = None,
) -> list[bool | None]:
    """One verdict per ``(conversation, answer)``: True refused, False did not, None unknown."""
    if method == "pattern":
        return [is_refusal(a) for _, a in answers]
    if method != "judge":
        raise ValueError(f"unknown refusal method {method!r}")
    if backend is None:
        raise ValueError("the judge refusal detector needs a backend")
    prompts = prompts or PromptSet()
    todo = [i for i, (_, a) in enumerate(answers) if a is not None and a.strip()]
    requests = [
        ChatRequest(
            id=f"refusal:{i}",
            messages=prompts.render(TEMPLATE, conversation=answers[i][0], answer=answers[i][1]),
            sampling=SAMPLING,
            seed=int(content_key(answers[i][1], length=8), 16) & 0x7FFFFFFF,
        )
        for i in todo
    ]
    out: list[bool | None] = [True] * len(answers)  # empty answers are refusals
    for i, gen in zip(todo, timed_generate(backend, requests, usage if usage is not None else StageUsage())):
        out[i] = parse_yes_no(gen.text) if gen.ok else None
    return out
