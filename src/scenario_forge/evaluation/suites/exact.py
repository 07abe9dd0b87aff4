"""Multiple-choice and exact-match items: capability checks, scored by the exact-match reward
(:func:`grading.exact_match.exact_match_reward`: the answer the completion states last, normalised).

A multiple-choice question is shown with its choices lettered A, B, C, ... (``prompts/suite_choice.j2``)
and the reference is the right letter; an exact-match question is asked as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...grading.exact_match import exact_match_reward
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


def reference(item: ChoiceItem | ExactItem) -> str:
    return item.letter if isinstance(item, ChoiceItem) else item.answer


def run_exact(suite: Suite, label: str, ask: Ask, prompts: PromptSet | None = None) -> list[GradeRow]:
    prompts = prompts or PromptSet()
    items = [i for i in suite.items if isinstance(i, ChoiceItem | ExactItem)]
    answers = ask([conversation(i, prompts) for i in items])
    grades: list[GradeRow] = []
    for item, text in zip(items, answers):
        if text is None:
            grades.append(suite_grade(suite, label, item.id, None, None, "generation_failed"))
        else:
            grades.append(suite_grade(suite, label, item.id, text, exact_match_reward(text, reference(item)), "scored"))
    return grades


def exact_figures(suite: Suite, grades: Sequence[GradeRow]) -> dict[str, Any]:
    """Accuracy over the answered items."""
    return {"accuracy": rate([g.score == 1.0 for g in grades if g.score is not None])}
