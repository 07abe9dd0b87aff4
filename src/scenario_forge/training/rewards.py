"""GRPO rewards that route by row: rubric grader, generic judge, or exact match.

A mixture row says how its answers are scored (``reward_type``), so the beneficial rows of the
paper's ``generic-reward`` arm get the generic-helpfulness judge while the same rows of the main arm
get their per-item rubric, and standard rows get exact match. :class:`RoutedReward` is one TRL
reward function (``(completions, **columns) -> list[float | None]``) that does the routing, grades
all rubric rows of a step in one judge batch, and logs every reward per source and per trait.
(:mod:`scenario_forge.rewards` wraps it for users of TRL or verl outside ``scenario-forge train``.)

Rubric rewards are HealthBench's per-example score (achieved / positive points), by default
*raw*: unclipped, so an answer that hits a pitfall can score below 0 and is ranked below one that
merely misses (``reward_range="clip"`` clips each reward to [0, 1] instead; docs/training.md says
why raw is the default).

Unscoreable rewards. A rubric answer with any criterion the judge could not read after its retries,
or a generic rating the judge would not give, is ``None`` here, never 0 and never a partial sum.
TRL (>= 1.6, pinned in the ``train`` extra) turns ``None`` into NaN; a completion whose every
reward is NaN is *unscorable*: it is left out of its group's mean and standard deviation and its
advantage is set to 0, so it neither pulls the policy toward nor away from that answer while the
rest of the group still learns. A group with fewer than two scoreable completions has no learning
signal (like a group whose rewards are all equal). Every unscoreable reward is counted, per step in
``rewards.jsonl`` and TRL's metrics (``rewards/unscoreable_frac``, ``rewards/unscoreable_count``),
and in total in ``train.json``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..grading import GenericJudge, GradeItem, RubricGrader
from ..grading.exact_match import completion_text, exact_match_reward
from ..records import Criterion, Message

ExactMatch = Callable[[Any, str], float]
#: Completion text kept per line of ``rewards.jsonl`` (enough to inspect or re-grade it).
COMPLETION_CHARS = 4000


def _messages(prompt: Any) -> list[Message]:
    if isinstance(prompt, str):
        return [Message(role="user", content=prompt)]
    return [Message(role=m["role"], content=m["content"]) for m in prompt]


def _rubric(value: Any) -> list[Criterion]:
    items = json.loads(value) if isinstance(value, str) else (value or [])
    return [Criterion.model_validate(c) for c in items]


class RoutedReward:
    """One TRL reward function for a whole mixture (see the module docstring).

    ``exact_match`` is ``(completion, answer) -> float`` (default: the mixer's
    :func:`~scenario_forge.grading.exact_match.exact_match_reward`, the reward its standard tasks
    were built for). ``log_path`` gets one JSON line per scored completion (step, row id, source,
    trait, domain, reward type, reward, unscoreable criteria, completion text); ``counts`` holds
    running totals.
    """

    __name__ = "routed_reward"  # TRL names the metric after the function

    def __init__(
        self,
        grader: RubricGrader | None,
        generic: GenericJudge | None = None,
        exact_match: ExactMatch = exact_match_reward,
        log_path: Path | None = None,
        reward_range: str = "raw",
    ) -> None:
        if reward_range not in ("raw", "clip"):
            raise ValueError(f"reward_range must be 'raw' or 'clip', got {reward_range!r}")
        self.reward_range = reward_range
        self.grader = grader
        self.generic = generic
        self.exact_match = exact_match
        self.log_path = log_path
        self.counts: dict[str, int] = defaultdict(int)
        #: Unscoreable rewards per optimizer step (the step TRL reports when it asks for rewards).
        self.unscoreable_per_step: dict[int, int] = defaultdict(int)
        self._lock = threading.Lock()

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float | None]:
        n = len(completions)
        texts = [completion_text(c) for c in completions]
        kinds = list(columns.get("reward_type") or ["rubric"] * n)
        for i, kind in enumerate(kinds):
            if kind not in ("rubric", "generic_judge", "exact_match"):
                raise ValueError(f"unknown reward_type {kind!r} in row {(columns.get('id') or ['?'] * n)[i]}")
        rewards: list[float | None] = [None] * n
        unscoreable_criteria = [0] * n

        rubric_idx = [i for i, k in enumerate(kinds) if k == "rubric"]
        if rubric_idx:
            if self.grader is None:
                raise ValueError("rubric rows need a rubric grader")
            items = [
                GradeItem(conversation=_messages(prompts[i]), answer=texts[i], rubric=_rubric(columns["rubric"][i]))
                for i in rubric_idx
            ]
            for i, grade in zip(rubric_idx, self.grader.grade(items)):
                score = grade.score
                if score is not None and self.reward_range == "clip":
                    score = min(1.0, max(0.0, score))
                rewards[i] = score
                unscoreable_criteria[i] = grade.unscoreable
        generic_idx = [i for i, k in enumerate(kinds) if k == "generic_judge"]
        if generic_idx:
            if self.generic is None:
                raise ValueError("generic_judge rows need a generic judge")
            scores = self.generic.score([(_messages(prompts[i]), texts[i]) for i in generic_idx])
            for i, score in zip(generic_idx, scores):
                rewards[i] = score
        answers = columns.get("answer") or [None] * n
        for i, kind in enumerate(kinds):
            if kind == "exact_match":
                rewards[i] = None if answers[i] is None else self.exact_match(texts[i], answers[i])

        self._record(rewards, kinds, unscoreable_criteria, texts, columns)
        return rewards

    def judge_requests(self) -> int:
        """Requests sent to judge backends so far (the rubric grader batches one per criterion)."""
        return sum(j.usage.requests for j in (self.grader, self.generic) if j is not None)

    def judge_counts(self) -> dict[str, int]:
        """The rubric grader's retry and unscoreable totals (``judge_retried``, ``judge_recovered``, ...)."""
        if self.grader is None:
            return {}
        return {f"judge_{k}": int(v) for k, v in self.grader.counts.items()}

    def _record(
        self,
        rewards: list[float | None],
        kinds: list[str],
        unscoreable: list[int],
        texts: list[str],
        columns: dict[str, Any],
    ) -> None:
        n = len(rewards)
        state = columns.get("trainer_state")
        step = int(getattr(state, "global_step", 0) or 0)
        ids = columns.get("id") or [None] * n
        sources = columns.get("source") or ["?"] * n
        traits = columns.get("trait") or [None] * n
        domains = columns.get("domain") or [None] * n
        tasks = columns.get("task") or [None] * n
        groups: dict[str, list[float]] = defaultdict(list)
        lines = []
        for i, r in enumerate(rewards):
            lines.append(
                json.dumps(
                    {
                        "step": step,
                        "time": round(time.time(), 3),
                        "id": ids[i],
                        "source": sources[i],
                        "trait": traits[i],
                        "domain": domains[i],
                        "task": tasks[i],
                        "reward_type": kinds[i],
                        "reward": r,
                        "unscoreable_criteria": unscoreable[i],
                        "completion": texts[i][:COMPLETION_CHARS],
                    }
                )
            )
            if r is not None:
                groups[f"rewards/source/{sources[i]}"].append(r)
                groups[f"rewards/type/{kinds[i]}"].append(r)
                if traits[i]:
                    groups[f"rewards/trait/{traits[i]}"].append(r)
                elif tasks[i]:
                    groups[f"rewards/task/{tasks[i]}"].append(r)
        with self._lock:
            self.counts["completions"] += n
            self.counts["unscoreable"] += sum(r is None for r in rewards)
            self.unscoreable_per_step[step] += sum(r is None for r in rewards)
            for i, r in enumerate(rewards):
                self.counts[f"{kinds[i]}"] += 1
                if r is None:
                    self.counts[f"{kinds[i]}_unscoreable"] += 1
            if self.log_path is not None:
                with self.log_path.open("a", encoding="utf-8") as f:
                    f.write("\n".join(lines) + "\n")
        log_metric = columns.get("log_metric")
        if log_metric is not None:
            for name, values in groups.items():
                log_metric(name, sum(values) / len(values))
            log_metric("rewards/unscoreable_frac", sum(r is None for r in rewards) / max(1, n))
            log_metric("rewards/unscoreable_count", float(sum(r is None for r in rewards)))
