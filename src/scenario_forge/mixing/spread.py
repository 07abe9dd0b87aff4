"""Rubrics fit for RL: does a scenario's rubric tell sampled answers apart?

GRPO learns from the differences between the rewards of answers sampled for the same prompt; a
prompt whose answers all score the same teaches nothing. Before a scenario enters a training
mixture we sample ``k`` answers from a policy backend, grade each with the rubric
(:class:`~scenario_forge.grading.RubricGrader`, HealthBench scoring) and record the spread
``max(score) - min(score)`` over the scoreable answers. A rubric is flagged

- ``flat`` when at least two answers were scored and the spread is at most ``min_spread`` (0: all equal),
- ``unscoreable`` when fewer than two answers got a score (the judge could not apply the rubric).

All sampling goes to the policy backend in one batch and all grading to the judge in one more.
Results are cached by content (scenario, rubric, models, sampling, k, seed, templates), so a
second arm over the same runs (``baseline`` after ``paper-5pct``) samples nothing again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ..atomic import atomic_write_text
from ..backends.base import ChatRequest, StageUsage, timed_generate
from ..backends.factory import backend_identity, get_backend
from ..grading import GradeItem, RubricGrader
from ..grading.rubric_grader import JUDGE_TEMPLATE
from ..hashing import content_key
from ..prompts import PromptSet
from ..records import Scenario
from .config import SpreadConfig

ANSWER_TEMPLATE = "policy_answer.j2"
Flag = Literal["flat", "unscoreable"]


class SpreadResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scenario_id: str
    scores: list[float | None]
    spread: float | None
    unscoreable_verdicts: int
    failed_samples: int
    flag: Flag | None

    @staticmethod
    def of(scenario_id: str, scores: list[float | None], unscoreable: int, failed: int, min_spread: float) -> SpreadResult:
        known = [s for s in scores if s is not None]
        spread = round(max(known) - min(known), 6) if len(known) >= 2 else None
        flag: Flag | None = "unscoreable" if spread is None else ("flat" if spread <= min_spread else None)
        return SpreadResult(
            scenario_id=scenario_id, scores=scores, spread=spread, unscoreable_verdicts=unscoreable,
            failed_samples=failed, flag=flag,
        )


class SpreadReport(BaseModel):
    """The check's results per scenario id, with what it cost."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    results: dict[str, SpreadResult] = {}
    k: int = 0
    policy: str | None = None
    judge: str | None = None
    cached: int = 0
    usage: dict[str, dict[str, float | int]] = {}
    templates: dict[str, str] = {}
    #: The grading judge's qualification (grading/qualification.py), as found when the check ran.
    judge_qualification: dict[str, object] | None = None

    def summary(self, keep_flagged: bool) -> dict[str, object]:
        flags = [r.flag for r in self.results.values()]
        return {
            "enabled": self.enabled,
            "k": self.k,
            "policy": self.policy,
            "judge": self.judge,
            "checked": len(self.results),
            "flat": flags.count("flat"),
            "unscoreable": flags.count("unscoreable"),
            "kept_flagged": keep_flagged,
            "unscoreable_verdicts": sum(r.unscoreable_verdicts for r in self.results.values()),
            "failed_samples": sum(r.failed_samples for r in self.results.values()),
            "from_cache": self.cached,
            "usage": self.usage,
            "templates": self.templates,
            "judge_qualification": self.judge_qualification,
        }


def _item_key(scenario: Scenario, config: SpreadConfig, policy: str, judge: str, seed: int, templates: dict[str, str]) -> str:
    return content_key(
        "spread-v1", scenario.id, scenario.messages, scenario.rubric, policy, judge, config.k,
        config.sampling, seed, templates,
    )


def _load_cache(folder: Path | None) -> dict[str, dict[str, Any]]:
    cache: dict[str, dict[str, Any]] = {}
    if folder is not None and folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            try:
                cache.update(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, json.JSONDecodeError):
                continue  # a damaged cache file only costs a recomputation
    return cache


def check_spread(
    scenarios: Sequence[Scenario],
    config: SpreadConfig,
    seed: int = 0,
    prompts: PromptSet | None = None,
    cache_dir: Path | None = None,
) -> SpreadReport:
    """Sample, grade and measure the spread of every scenario's rubric (two backend calls in all)."""
    if not config.enabled:
        return SpreadReport(enabled=False)
    prompts = prompts or PromptSet()
    judge_cfg = config.grader
    policy_id, judge_id = backend_identity(config.policy), backend_identity(judge_cfg)
    templates = prompts.hash_of([ANSWER_TEMPLATE, JUDGE_TEMPLATE])
    keys = {s.id: _item_key(s, config, policy_id, judge_id, seed, templates) for s in scenarios}
    cache = _load_cache(cache_dir)
    from ..grading.qualification import qualification

    report = SpreadReport(enabled=True, k=config.k, policy=policy_id, judge=judge_id, templates=templates,
                          judge_qualification=qualification(judge_cfg, model_identity=judge_id, prompts=prompts))
    todo = []
    for s in scenarios:
        hit = cache.get(keys[s.id])
        if hit is not None:
            report.results[s.id] = SpreadResult.of(
                s.id, hit["scores"], hit["unscoreable_verdicts"], hit["failed_samples"], config.min_spread
            )
            report.cached += 1
        else:
            todo.append(s)
    if not todo:
        return report

    sample_usage, grade_usage = StageUsage(), StageUsage()
    requests = [
        ChatRequest(
            id=f"answer:{i}:{j}",
            messages=prompts.render(ANSWER_TEMPLATE, conversation=s.messages),
            sampling=config.sampling,
            seed=int(content_key(seed, s.id, j, length=8), 16) & 0x7FFFFFFF,
        )
        for i, s in enumerate(todo)
        for j in range(config.k)
    ]
    answers = timed_generate(get_backend(config.policy), requests, sample_usage)
    items: list[GradeItem] = []
    where: list[tuple[int, int]] = []
    failed = [0] * len(todo)
    transient = [0] * len(todo)  # failed requests, policy or judge: not cached, asked again next time
    for n, gen in enumerate(answers):
        i, j = divmod(n, config.k)
        text = (gen.text or "").strip()
        if gen.ok and text:
            items.append(GradeItem(conversation=todo[i].messages, answer=text, rubric=todo[i].rubric))
            where.append((i, j))
        else:
            failed[i] += 1
            transient[i] += not gen.ok
    grader = RubricGrader(get_backend(judge_cfg), prompts=prompts)
    grades = grader.grade(items)
    grade_usage.merge(grader.usage)
    scores: list[list[float | None]] = [[None] * config.k for _ in todo]
    unscoreable = [0] * len(todo)
    for (i, j), grade in zip(where, grades):
        scores[i][j] = grade.score
        unscoreable[i] += grade.unscoreable
        transient[i] += grade.failed_requests
    fresh: dict[str, dict[str, Any]] = {}
    for i, s in enumerate(todo):
        result = SpreadResult.of(s.id, scores[i], unscoreable[i], failed[i], config.min_spread)
        report.results[s.id] = result
        if transient[i] == 0:
            fresh[keys[s.id]] = result.model_dump(mode="json")
    if cache_dir is not None and fresh:
        atomic_write_text(cache_dir / f"{content_key(sorted(fresh), length=16)}.json", json.dumps(fresh))
    report.usage = {"spread_sample": sample_usage.summary(), "spread_grade": grade_usage.summary()}
    return report
