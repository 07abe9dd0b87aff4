"""``mix --plan-only``: where every scenario would go, the totals, and the spread check's requests.

:func:`estimate_mixture` runs the mix's own planning stage (:func:`~.plan.plan_mixture`: loads the
runs, assigns held-out splits, opens the base set) in a staging folder it removes after (with any
folder made for it), and counts:

- splits: held-out splits as planned; the training split at most ``B`` beneficial + ``S`` standard
  rows, ``B`` from the candidates as if every one passed the spread check (the check can only
  lower it);
- the spread check (when on): ``k`` policy answers per training candidate and one judge request per
  (answer, criterion). Prompt tokens: each candidate's conversation rendered in the answer and
  grading templates (characters / 4), plus the answer's ``max_tokens`` in each grading request;
  completion tokens at each request's ``max_tokens``. Upper bounds on the first attempts: cached
  results (same scenario, policy, judge and templates) are not asked again, retries come on top.

Nothing under ``--out`` is written and no model loads.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..errors import ConfigError
from ..generation.estimate import StageEstimate, prompt_tokens
from ..prompts import PromptSet
from ..staging import staging_for
from .config import MixConfig
from .plan import MixPlan, plan_mixture


class MixPlanReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipe: str
    out: str
    loaded: int
    candidates: int
    heldout: dict[str, int]
    dropped: dict[str, int]
    ratio: str
    train: dict[str, int] | None
    train_note: str
    base: str
    spread: dict[str, StageEstimate]


def estimate_mixture(config: MixConfig) -> MixPlanReport:
    parent_missing = [p for p in config.out.parents if not p.exists()]
    try:
        with staging_for(config.out) as staging:
            return _report(config, plan_mixture(config, staging))
    finally:
        for folder in parent_missing:  # deepest first; only if nothing else went there
            try:
                folder.rmdir()
            except OSError:
                break


def _report(config: MixConfig, plan: MixPlan) -> MixPlanReport:
    from ..grading.config import GradingConfig
    from ..grading.rubric_grader import JUDGE_TEMPLATE
    from .spread import ANSWER_TEMPLATE
    from .totals import choose_totals, plan_counts

    recipe = plan.resolved.recipe
    p, q = plan.fraction.numerator, plan.fraction.denominator
    counts = plan_counts(plan.loaded, plan.heldout, plan.dropped)
    try:
        b, s, t = choose_totals(
            p, q, len(plan.candidates), recipe.total_rows, plan.base.n_rows, config.allow_smaller,
            recipe.standard_only, recipe.name, counts,
        )
        train: dict[str, int] | None = {
            "beneficial": 0 if recipe.standard_only else b, "standard": t if recipe.standard_only else s, "total": t,
        }
        note = "at most: the spread check may drop candidates"
    except ConfigError as exc:
        train, note = None, str(exc)
    spread: dict[str, StageEstimate] = {}
    if config.spread.enabled:
        prompts = PromptSet(config.prompts)
        k = config.spread.k
        judge_cfg = config.spread.grader
        grading: Any = getattr(config.spread, "grading", None) or GradingConfig()
        form = grading.form_for(
            judge_cfg.kind,
            judge_cfg.kind in ("openai", "vllm") or (judge_cfg.kind == "llamacpp" and judge_cfg.structured_output == "auto"),
        )
        answer_max = config.spread.sampling.max_tokens
        ask_tokens = grade_tokens = criteria = 0
        for sid in plan.candidates:
            s_ = plan.scenarios[sid]
            ask_tokens += sum(prompt_tokens(m.content) for m in prompts.render(ANSWER_TEMPLATE, conversation=s_.messages))
            for c in s_.rubric:
                rendered = prompts.render(
                    JUDGE_TEMPLATE, conversation=s_.messages, answer="", criterion=c.criterion, points=c.points, output=form,
                )
                grade_tokens += sum(prompt_tokens(m.content) for m in rendered) + answer_max
                criteria += 1
        spread["spread_answers"] = StageEstimate(
            requests=k * len(plan.candidates), prompt_tokens=k * ask_tokens, completion_tokens=k * len(plan.candidates) * answer_max,
        )
        spread["spread_grades"] = StageEstimate(
            requests=k * criteria, prompt_tokens=k * grade_tokens, completion_tokens=k * criteria * grading.sampling(form).max_tokens,
        )
    return MixPlanReport(
        recipe=recipe.name,
        out=str(config.out),
        loaded=plan.loaded,
        candidates=len(plan.candidates),
        heldout={name: len(ids) for name, ids in plan.heldout.items()},
        dropped=dict(sorted(Counter(r.reason for r in plan.dropped).items())),
        ratio=f"{p}/{q}",
        train=train,
        train_note=note,
        base=str(getattr(plan.base, "name", "")),
        spread=spread,
    )
