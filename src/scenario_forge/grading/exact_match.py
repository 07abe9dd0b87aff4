"""The exact-match reward: 1.0 when a completion's final answer equals the reference answer.

It scores the standard RL rows of a mixture (the embedded verifiable tasks of
:mod:`scenario_forge.mixing.base_tasks` and any ``--base`` set with an answer column) in training and
in the evaluation. :func:`exact_match_rewards` is its TRL reward-function form.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_HASHES = re.compile(r"####\s*(.+)")
_ANSWER_IS = re.compile(r"(?:final answer|answer)\s*(?:is\s*:?|:)\s*(.+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_WORD = re.compile(r"[A-Za-z]+")


def completion_text(completion: Any) -> str:
    """Plain text of a completion: a string, or TRL's conversational ``[{"role", "content"}]``
    (the last assistant message)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    if isinstance(completion, list | tuple):
        texts = [m.get("content") or "" for m in completion if isinstance(m, dict) and m.get("role", "assistant") == "assistant"]
        return str(texts[-1]) if texts else ""
    return "" if completion is None else str(completion)


def final_segment(text: str) -> str:
    """Where a completion states its answer: the last ``\\boxed{..}``, else text after the last
    ``####``, else after the last ``answer is``/``answer:``, else the whole text.

    >>> final_segment("so 4 + 3 = 7\\n#### 7"), final_segment("The final answer is: 2024-03-01.")
    ('7', '2024-03-01.')
    """
    for pattern in (_BOXED, _HASHES, _ANSWER_IS):
        found = pattern.findall(text)
        if found:
            return str(found[-1]).strip()
    return text.strip()


def normalize_answer(text: str) -> str:
    """Lower case, single spaces, no surrounding quotes, ``*``, ``$`` or final full stop, no
    thousands separators in numbers, and numbers in canonical decimal form.

    >>> normalize_answer(" **3,500.** "), normalize_answer("Tuesday."), normalize_answer("12.50")
    ('3500', 'tuesday', '12.5')
    """
    t = " ".join(text.strip().split()).lower()
    t = t.strip("*`\"' $").rstrip(".").strip()
    if _NUMBER.fullmatch(t):
        return _canonical_number(t) or t
    return t


def _canonical_number(text: str) -> str | None:
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


def exact_match_reward(completion: Any, answer: str | None) -> float:
    """1.0 if the completion's final answer equals ``answer``, else 0.0 (the standard rows' reward).

    Normalization: the answer is read from :func:`final_segment` of the completion (a string or
    TRL's conversational messages). Both sides go through :func:`normalize_answer`; if they are
    not equal, a numeric reference is compared with the *last* number of that segment (numerically:
    ``3,500`` = ``3500.0`` = ``3500``), a date (``YYYY-MM-DD``) with the last date, and a one-word
    reference (a weekday) with the last word. Taking only the last one means listing candidates
    earns nothing.

    >>> exact_match_reward("3,500 metres", "3500"), exact_match_reward("#### 278", "278")
    (1.0, 1.0)
    >>> exact_match_reward("It is 2023-04-28.", "2023-04-28"), exact_match_reward("That was a Tuesday.", "Tuesday")
    (1.0, 1.0)
    >>> exact_match_reward("Maybe 41 or 42? I'd say 41.", "42"), exact_match_reward("", "42")
    (0.0, 0.0)
    >>> exact_match_reward([{"role": "assistant", "content": "The answer is 12.5"}], "12.50")
    1.0
    """
    if answer is None:
        return 0.0
    want = normalize_answer(str(answer))
    segment = final_segment(completion_text(completion))
    if not want or not segment:
        return 0.0
    if normalize_answer(segment) == want:
        return 1.0
    if _NUMBER.fullmatch(want):
        numbers = _NUMBER.findall(segment)
        return float(bool(numbers) and _canonical_number(numbers[-1]) == want)
    if _DATE.fullmatch(want):
        dates = _DATE.findall(segment)
        return float(bool(dates) and dates[-1] == want)
    if _WORD.fullmatch(want):
        words = _WORD.findall(segment)
        return float(bool(words) and words[-1].lower() == want)
    return 0.0


def exact_match_rewards(completions: list[Any], answer: list[str | None], **_: Any) -> list[float | None]:
    """TRL reward function: one reward per completion; ``None`` (not applicable) for rows without an
    answer, so rubric rows in the same batch are left to their own reward.

    >>> exact_match_rewards(["#### 7", "no idea", "x"], answer=["7", "7", None])
    [1.0, 0.0, None]
    """
    return [None if a is None else exact_match_reward(c, a) for c, a in zip(completions, answer)]
