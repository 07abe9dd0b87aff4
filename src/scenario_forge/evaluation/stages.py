"""The evaluation's stages over one split at a time: answer the rows, then grade the answers.

Both are plain functions over a batch of records; the flow (or :func:`~.run.evaluate`) calls them
once per model per split. Answers are cached on disk under a content key (model identity,
sampling, seed, the rows' prompts), so a rerun after a judge failure does not generate again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from ..backends.base import Backend, ChatRequest, StageUsage, timed_generate
from ..config import SamplingParams
from ..grading import GenericJudge, GradeItem, RubricGrader
from ..grading.exact_match import exact_match_reward
from ..hashing import content_key
from ..records import MixtureRow
from .records import Answer, GradeRow, read_answers, write_answers
from .refusal import classify_refusals


def answers_key(model_identity: str, sampling: SamplingParams, seed: int, rows: Sequence[MixtureRow]) -> str:
    """What identifies a split's answers: same key, same answers (for the on-disk cache)."""
    prompts = [(r.id, [m.model_dump() for m in r.prompt]) for r in rows]
    return content_key(model_identity, sampling.model_dump(), seed, prompts)


def answer_rows(
    backend: Backend,
    rows: Sequence[MixtureRow],
    sampling: SamplingParams,
    seed: int = 0,
    usage: StageUsage | None = None,
) -> list[Answer]:
    """One answer per row, in order; a failed request becomes an answer with ``text=None``."""
    requests = [
        ChatRequest(
            id=f"answer:{i}",
            messages=r.prompt,
            sampling=sampling,
            seed=int(content_key(seed, r.id, length=8), 16) & 0x7FFFFFFF,
        )
        for i, r in enumerate(rows)
    ]
    out = []
    for row, gen in zip(rows, timed_generate(backend, requests, usage if usage is not None else StageUsage())):
        out.append(
            Answer(
                split=row.split,
                row_id=row.id,
                text=gen.text,
                finish_reason=gen.finish_reason,
                completion_tokens=gen.completion_tokens,
                error=gen.error,
            )
        )
    return out


def cached_answers(
    cache: Path, key: str, backend_factory: Callable[[], Backend], rows: Sequence[MixtureRow], sampling: SamplingParams, seed: int,
    usage: StageUsage | None = None,
) -> list[Answer]:
    """:func:`answer_rows`, read from ``cache/KEY.parquet`` when an earlier run wrote it.

    Answers whose request failed (``text=None``) are asked again (a row's seed depends on its id,
    so the others are what a fresh run would produce)."""
    path = cache / f"{key}.parquet"
    if path.is_file():
        answers = read_answers(path)
        if [a.row_id for a in answers] == [r.id for r in rows]:
            retry = [i for i, a in enumerate(answers) if a.text is None]
            if not retry:
                return answers
            fresh = answer_rows(backend_factory(), [rows[i] for i in retry], sampling, seed, usage)
            for i, answer in zip(retry, fresh):
                answers[i] = answer
            write_answers(path, answers)
            return answers
    answers = answer_rows(backend_factory(), rows, sampling, seed, usage)
    write_answers(path, answers)
    return answers


def grade_answers(
    label: str,
    rows: Sequence[MixtureRow],
    answers: Sequence[Answer],
    grader: RubricGrader | None,
    generic: GenericJudge | None = None,
    refusal: str = "pattern",
    refusal_backend: Backend | None = None,
) -> list[GradeRow]:
    """Grade each answer by its row's reward type; detect refusals. One judge batch per kind."""
    if [a.row_id for a in answers] != [r.id for r in rows]:
        raise ValueError("one answer per row, in row order")
    scores: dict[int, tuple[float | None, str, int, int, list[bool | None]]] = {}
    rubric_idx = [i for i, (r, a) in enumerate(zip(rows, answers)) if r.reward_type == "rubric" and a.text is not None]
    if rubric_idx:
        if grader is None:
            raise ValueError("rubric rows need a rubric grader")
        items = [GradeItem(conversation=rows[i].prompt, answer=answers[i].text or "", rubric=rows[i].rubric) for i in rubric_idx]
        for i, g in zip(rubric_idx, grader.grade(items)):
            scores[i] = (g.score, "scored" if g.score is not None else "unscoreable", len(g.met), g.unscoreable, g.met)
    generic_idx = [i for i, (r, a) in enumerate(zip(rows, answers)) if r.reward_type == "generic_judge" and a.text is not None]
    if generic_idx:
        if generic is None:
            raise ValueError("generic_judge rows need a generic judge")
        for i, s in zip(generic_idx, generic.score([(rows[i].prompt, answers[i].text or "") for i in generic_idx])):
            scores[i] = (s, "scored" if s is not None else "unscoreable", 1, int(s is None), [])
    for i, (r, a) in enumerate(zip(rows, answers)):
        if a.text is None:
            scores[i] = (None, "generation_failed", len(r.rubric), 0, [])
        elif r.reward_type == "exact_match":
            if r.answer is None:
                scores[i] = (None, "no_reference", 0, 0, [])
            else:
                scores[i] = (exact_match_reward(a.text, r.answer), "scored", 0, 0, [])
    classes = classify_refusals([(r.prompt, a.text) for r, a in zip(rows, answers)], refusal, refusal_backend)
    out = []
    for i, (r, a) in enumerate(zip(rows, answers)):
        score, status, criteria, unscoreable, met = scores[i]
        out.append(
            GradeRow(
                model=label,
                split=r.split,
                row_id=r.id,
                scenario_id=r.scenario_id,
                source=r.source,
                reward_type=r.reward_type,
                domain=r.domain,
                trait=r.trait,
                task=r.task,
                persona_variant=r.persona_variant,
                answer=a.text,
                score=score,
                status=status,
                criteria=criteria,
                unscoreable_criteria=unscoreable,
                met=json.dumps(met),
                # only a true refusal counts as refused: declining a false premise or a harmful step does not
                refused=(classes[i] == "refusal") if a.text is not None and classes[i] is not None else None,
                refusal_class=classes[i] if a.text is not None else None,
            )
        )
    return out
