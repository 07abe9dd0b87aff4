"""The LLM quality judge: realism, whether the scenario tests its trait, and whether its rubric is
gradable, each scored 1-5 by a judge backend (``prompts/judge_quality.j2``).

Each dimension is one short question with a one-number answer, and backends that can continue a
reply get it started (``Score:``): measured on the 135M embedded model, a single reply holding all
three ``NAME: N`` lines came back either with the example's numbers copied or with the format's
own words echoed, while one question at a time mostly yields a number. All requests of a batch go
out together. A judgment the judge could not make (a refusal, a failed request, no number in
1..5) is *unscoreable*: that dimension is ``None``, never 0. The overall score is the mean of the
three dimensions and exists only when all three were scored; a verdict with one or two
dimensions is *partial* and counts as unscoreable for the threshold (``keep_unscoreable``
decides its fate), because a mean over whichever dimensions a small judge answered is not the
same measurement.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..backends.base import Backend, ChatRequest, Generation, StageUsage, join_prefix, timed_generate
from ..config import CurationConfig
from ..hashing import content_key
from ..prompts import PromptSet
from ..records import Quality, Reject, Scenario

TEMPLATE = "judge_quality.j2"
STAGE = "judge"
PREFIX = "Score:"
#: One question per dimension (``{trait}`` is filled in).
QUESTIONS = {
    "realism": "Could a real user have written the user's messages in this conversation?",
    "tests_trait": "Does answering the last message well require {trait}?",
    "gradable": "Can a grader use the criteria to tell a good answer from a bad one?",
}
DIMENSIONS = tuple(QUESTIONS)
_SCORE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)(?:\s*(?:/|out\s+of)\s*(\d+))?")
_REFUSAL = re.compile(r"\b(cannot|can't|unable to|refuse|sorry|as an ai)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    """One scenario's three parsed answers."""

    realism: float | None
    tests_trait: float | None
    gradable: float | None

    @property
    def scored(self) -> int:
        return sum(v is not None for v in (self.realism, self.tests_trait, self.gradable))

    @property
    def score(self) -> float | None:
        values = (self.realism, self.tests_trait, self.gradable)
        if any(v is None for v in values):
            return None
        return round(sum(values) / 3, 4)  # type: ignore[arg-type]


def parse_score(text: str | None) -> float | None:
    """The answer's score on the 1-5 scale if it is clear, else None.

    The first number in the reply's first few words counts: a plain number must lie in 1..5; a
    number with an explicit other scale ("9 out of 10", "7/10") is mapped linearly onto 1..5
    (0 of M -> 1, M of M -> 5), since small judges often answer on a 10-point scale.

    >>> parse_score("Score: 4"), parse_score("4/5 - realistic"), parse_score("9 out of 10")
    (4.0, 4.0, 4.6)
    >>> parse_score("Score: 7") is None, parse_score("12 out of 10") is None, parse_score("The user is a nurse.") is None
    (True, True, True)
    >>> parse_score("I'm sorry, I cannot rate this.") is None
    True
    """
    if not text or _REFUSAL.search(text[:80]):
        return None
    head = " ".join(text.replace("*", " ").split()[:8])
    match = _SCORE.search(head)
    if match is None:
        return None
    value = float(match.group(1))
    scale = int(match.group(2)) if match.group(2) else None
    if scale is None or scale == 5:
        return value if 1 <= value <= 5 else None
    if 2 <= scale <= 100 and 0 <= value <= scale:
        return round(1 + 4 * value / scale, 2)
    return None


def _trait_words(identifier: str | None) -> str | None:
    return identifier.replace("_", " ") if identifier else None


def judge_requests(
    scenarios: Sequence[Scenario], config: CurationConfig, prompts: PromptSet, backend: Backend
) -> list[ChatRequest]:
    """Three requests per scenario, one per dimension, in (scenario, dimension) order."""
    out = []
    for i, s in enumerate(scenarios):
        trait = _trait_words(s.trait)
        for dim, question in QUESTIONS.items():
            out.append(
                ChatRequest(
                    id=f"judge:{i}:{dim}",
                    messages=prompts.render(
                        TEMPLATE,
                        trait=trait,
                        facet=_trait_words(s.facet),
                        brief=s.brief,
                        messages=s.messages,
                        rubric=s.rubric,
                        question=question.format(trait=trait),
                    ),
                    sampling=config.judge_sampling,
                    seed=int(content_key(s.id, s.provenance.run_id, dim, length=8), 16) & 0x7FFFFFFF,
                    prefix=PREFIX if backend.supports_prefix else None,
                )
            )
    return out


def _reply(gen: Generation, backend: Backend) -> str | None:
    if not gen.ok:
        return None
    return join_prefix(PREFIX, gen.text or "") if backend.supports_prefix else gen.text


@dataclass
class JudgeOutcome:
    kept: list[Scenario]
    rejects: list[Reject]
    report: dict[str, Any]


def apply_judge(
    scenarios: Sequence[Scenario],
    config: CurationConfig,
    backend: Backend,
    prompts: PromptSet,
    usage: StageUsage,
) -> JudgeOutcome:
    """Score every scenario; fill ``quality``; reject low scores (and unscoreable ones if asked)."""
    requests = judge_requests(scenarios, config, prompts, backend)
    generations = timed_generate(backend, requests, usage) if requests else []
    kept: list[Scenario] = []
    rejects: list[Reject] = []
    tally = {"judged": len(scenarios), "scored": 0, "partial": 0, "unscoreable": 0, "failed_requests": 0}
    low = 0
    scores: list[float] = []
    per = len(DIMENSIONS)
    for k, scenario in enumerate(scenarios):
        gens = generations[k * per : (k + 1) * per]
        replies = [_reply(g, backend) for g in gens]
        verdict = Verdict(*(parse_score(r) for r in replies))
        failed = [g for g in gens if not g.ok]
        tally["failed_requests"] += len(failed)
        quality = Quality(
            realism=verdict.realism,
            tests_trait=verdict.tests_trait,
            gradable=verdict.gradable,
            score=verdict.score,
            judge_model=backend.model_id,
        )
        judged = scenario.model_copy(update={"quality": quality})
        if verdict.score is None:
            tally["partial" if verdict.scored else "unscoreable"] += 1
            if config.keep_unscoreable:
                kept.append(judged)
            else:
                detail = f"judge gave {verdict.scored}/3 scores; replies: {replies!r}"
                if failed:
                    detail += f"; failed: {failed[0].error}"
                rejects.append(Reject.of_scenario(scenario, STAGE, "unscoreable_quality", detail))
            continue
        tally["scored"] += 1
        scores.append(verdict.score)
        if verdict.score < config.judge_threshold:
            low += 1
            rejects.append(
                Reject.of_scenario(
                    scenario, STAGE, "low_quality",
                    f"score {verdict.score:.2f} < {config.judge_threshold} (realism {verdict.realism:g}, "
                    f"tests_trait {verdict.tests_trait:g}, gradable {verdict.gradable:g})",
                )
            )
        else:
            kept.append(judged)
    report = {
        **tally,
        "rejected_low_quality": low,
        "rejected_unscoreable": 0 if config.keep_unscoreable else tally["partial"] + tally["unscoreable"],
        "kept_unscoreable": (tally["partial"] + tally["unscoreable"]) if config.keep_unscoreable else 0,
        "threshold": config.judge_threshold,
        "mean_score": round(sum(scores) / len(scores), 3) if scores else None,
        "judge_model": backend.model_id,
    }
    return JudgeOutcome(kept=kept, rejects=rejects, report=report)
