"""Multiple-choice and exact-match items: capability checks, scored by the exact-match reward
(:func:`grading.exact_match.exact_match_reward`: the answer the completion states last, normalised).

A multiple-choice question is shown with its choices lettered A, B, C, ... (``prompts/suite_choice.j2``)
and scored by the letter the answer states (:func:`choice_reward`); an exact-match question is asked
as it is and scored by the exact-match reward.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ...grading.exact_match import completion_text, exact_match_reward, final_segment
from ...prompts import PromptSet
from ...records import Message
from ..records import GradeRow
from .grades import Ask, rate, suite_grade
from .items import ChoiceItem, ExactItem, Suite

CHOICE_TEMPLATE = "suite_choice.j2"


def conversation(item: ChoiceItem | ExactItem, prompts: PromptSet) -> list[Message]:
    if isinstance(item, ChoiceItem):
        letters = [chr(ord("A") + i) for i in range(len(item.choices))]
        return prompts.render(CHOICE_TEMPLATE, question=item.question, choices=list(zip(letters, item.choices)))
    return [Message(role="user", content=item.question)]


def choice_reward(text: str, item: ChoiceItem) -> float:
    """1.0 when the letter the answer states is the right one: the first standalone choice letter in
    the answer's final segment (after "The answer is", a ``\\boxed{}``, ...), so "The answer is B
    (Paris)." reads as B.

    >>> item = ChoiceItem(id="q", question="Capital of France?", choices=["Rome", "Paris"], answer=1)
    >>> choice_reward("The answer is B (Paris).", item), choice_reward("The answer is A.", item)
    (1.0, 0.0)
    >>> choice_reward("I think it is Paris, so B", item), choice_reward("no idea", item)
    (1.0, 0.0)
    """
    letters = "".join(chr(ord("A") + i) for i in range(len(item.choices)))
    found = re.search(rf"\b([{letters}])\b", final_segment(completion_text(text)))
    return 1.0 if found is not None and found.group(1) == item.letter else 0.0


def score(item: ChoiceItem | ExactItem, text: str) -> float:
    return choice_reward(text, item) if isinstance(item, ChoiceItem) else exact_match_reward(text, item.answer)


def run_exact(suite: Suite, label: str, ask: Ask, prompts: PromptSet | None = None) -> list[GradeRow]:
    prompts = prompts or PromptSet()
    items = [i for i in suite.items if isinstance(i, ChoiceItem | ExactItem)]
    answers = ask([conversation(i, prompts) for i in items])
    grades: list[GradeRow] = []
    for item, text in zip(items, answers):
        if text is None:
            grades.append(suite_grade(suite, label, item.id, None, None, "generation_failed"))
        else:
            grades.append(suite_grade(suite, label, item.id, text, score(item, text), "scored"))
    return grades


def exact_figures(suite: Suite, grades: Sequence[GradeRow]) -> dict[str, Any]:
    """Accuracy over the answered items."""
    return {"accuracy": rate([g.score == 1.0 for g in grades if g.score is not None])}
