"""Rubric-graded conversations in HealthBench's row shape, scored as HealthBench scores them.

Per example: the points of the met criteria (negative ones subtract) over the positive points,
unclipped (:func:`grading.rubric_grader.rubric_score`); a tag's score is the same over the criteria
carrying that tag (kept only when they hold positive points), and each ``example_tags`` tag gets the
example's score. Every aggregate (overall and per tag) is the mean over the examples that have it,
clipped to [0, 1] (:func:`grading.rubric_grader.healthbench_mean`). One difference, the project's
rule: an example with a criterion the judge could not read is unscoreable and left out (counted),
where HealthBench would have read it as not met.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ...backends.base import Backend
from ...grading.config import GradingConfig
from ...grading.rubric_grader import GradeItem, RubricGrader, healthbench_mean, rubric_score
from ...prompts import PromptSet
from ...records import Criterion
from ..records import GradeRow
from .grades import Ask, suite_grade
from .items import RubricItem, Suite


def tag_scores(item: RubricItem, met: Sequence[bool | None]) -> dict[str, float]:
    """HealthBench's per-example metrics besides the overall score: each rubric tag's score over its
    criteria (when they hold positive points) and the example's score under each example tag.

    >>> from scenario_forge.records import Message
    >>> item = RubricItem(id="x", prompt=[Message(role="user", content="hi")], example_tags=["theme:demo"], rubrics=[
    ...     Criterion(criterion="is accurate", points=5, tags=["axis:accuracy"]),
    ...     Criterion(criterion="is complete", points=5, tags=["axis:completeness"]),
    ...     Criterion(criterion="invents a fact", points=-5, tags=["axis:accuracy"])])
    >>> tag_scores(item, [True, False, True])
    {'theme:demo': 0.0, 'axis:accuracy': 0.0, 'axis:completeness': 0.0}
    >>> tag_scores(item, [True, True, False])
    {'theme:demo': 1.0, 'axis:accuracy': 1.0, 'axis:completeness': 1.0}
    """
    overall = rubric_score(item.rubrics, met)
    if overall is None:
        return {}
    out = {tag: overall for tag in item.example_tags}
    by_tag: defaultdict[str, list[tuple[Criterion, bool | None]]] = defaultdict(list)
    for criterion, verdict in zip(item.rubrics, met):
        for tag in criterion.tags:
            by_tag[tag].append((criterion, verdict))
    for tag, pairs in by_tag.items():
        if any(c.points > 0 for c, _ in pairs):
            score = rubric_score([c for c, _ in pairs], [v for _, v in pairs])
            if score is not None:
                out[tag] = score
    return out


def run_rubric(
    suite: Suite, label: str, ask: Ask, judge: Backend, prompts: PromptSet | None = None, grading: GradingConfig | None = None,
) -> list[GradeRow]:
    """Answer each conversation and grade the answer against its rubric (one judge batch)."""
    items = [i for i in suite.items if isinstance(i, RubricItem)]
    answers = ask([i.prompt for i in items])
    answered = [(item, text) for item, text in zip(items, answers) if text is not None]
    grader = RubricGrader(judge, prompts, grading)
    graded = grader.grade([GradeItem(conversation=item.prompt, answer=text, rubric=item.rubrics) for item, text in answered])
    by_id = {item.id: g for (item, _), g in zip(answered, graded)}
    grades: list[GradeRow] = []
    for item, text in zip(items, answers):
        g = by_id.get(item.id)
        if g is None:
            grades.append(suite_grade(suite, label, item.id, None, None, "generation_failed", criteria=len(item.rubrics)))
            continue
        status = "scored" if g.score is not None else "unscoreable"
        grades.append(suite_grade(suite, label, item.id, text, g.score, status, criteria=len(item.rubrics),
                                  unscoreable_criteria=g.unscoreable, met=json.dumps(g.met)))
    return grades


def rubric_figures(suite: Suite, grades: Sequence[GradeRow]) -> dict[str, Any]:
    """HealthBench's aggregates over one model's grades: the overall score and every tag's score."""
    items = {i.id: i for i in suite.items if isinstance(i, RubricItem)}
    per_tag: defaultdict[str, list[float]] = defaultdict(list)
    for g in grades:
        if g.score is not None and g.row_id in items:
            for tag, value in tag_scores(items[g.row_id], json.loads(g.met)).items():
                per_tag[tag].append(value)
    return {
        "healthbench_score": healthbench_mean([g.score for g in grades]),
        "tags": {tag: {"score": healthbench_mean(values), "n": len(values)} for tag, values in sorted(per_tag.items())},
    }
