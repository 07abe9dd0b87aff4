"""Judge-graded free-form items: the judge rates each answer from 1 to 10 with the suite's own
grading prompt (a Jinja file rendered in the project's sandbox via :class:`PromptSet`: the file
``<suite>.grade.j2`` beside the suite file, else the shipped ``prompts/suite_judged.j2``). The
template gets ``question``, ``answer``, ``reference`` and ``notes`` (None when the item has none).
A rating r maps to (r - 1) / 9; an unreadable rating is unscoreable (None), never 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...backends.base import Backend, ChatRequest, StageUsage, timed_generate
from ...grading.generic_judge import SAMPLING
from ...grading.verdicts import parse_rating
from ...hashing import content_key
from ...prompts import PromptSet
from ...records import Message
from ..records import GradeRow
from .grades import Ask, suite_grade
from .items import JudgedItem, Suite

DEFAULT_TEMPLATE = "suite_judged.j2"


def grading_template(suite: Suite, prompts: PromptSet | None = None) -> tuple[PromptSet, str]:
    """The prompt set and template name that grade this suite."""
    if suite.grading_prompt is not None:
        path = Path(suite.grading_prompt)
        return PromptSet(path.parent), path.name
    return prompts or PromptSet(), DEFAULT_TEMPLATE


def run_judged(
    suite: Suite, label: str, ask: Ask, judge: Backend, prompts: PromptSet | None = None,
) -> list[GradeRow]:
    """Answer each question and have the judge rate the answer with the suite's grading prompt."""
    items = [i for i in suite.items if isinstance(i, JudgedItem)]
    answers = ask([[Message(role="user", content=i.question)] for i in items])
    prompt_set, template = grading_template(suite, prompts)
    answered = [(item, text) for item, text in zip(items, answers) if text is not None]
    requests = [
        ChatRequest(
            id=f"suite-judge:{n}",
            messages=prompt_set.render(template, question=item.question, answer=text, reference=item.reference, notes=item.notes),
            sampling=SAMPLING,
            seed=int(content_key(item.id, text, length=8), 16) & 0x7FFFFFFF,
        )
        for n, (item, text) in enumerate(answered)
    ]
    ratings = {}
    for (item, _), gen in zip(answered, timed_generate(judge, requests, StageUsage())):
        ratings[item.id] = parse_rating(gen.text) if gen.ok else None
    grades: list[GradeRow] = []
    for item, text in zip(items, answers):
        if text is None:
            grades.append(suite_grade(suite, label, item.id, None, None, "generation_failed"))
            continue
        rating = ratings[item.id]
        score = None if rating is None else (rating - 1) / 9
        grades.append(suite_grade(suite, label, item.id, text, score, "scored" if score is not None else "unscoreable"))
    return grades


def judged_figures(suite: Suite, grades: Sequence[GradeRow]) -> dict[str, Any]:
    """Which grading prompt rated the answers (the mean is the summary's)."""
    return {"grading_prompt": str(suite.grading_prompt) if suite.grading_prompt else f"prompts/{DEFAULT_TEMPLATE}"}
