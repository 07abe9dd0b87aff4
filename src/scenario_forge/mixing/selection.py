"""The mix job's model stage and its selection: the spread check over the training candidates,
then the exact totals and the beneficial rows that train."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from .. import progress
from ..prompts import PromptSet
from ..records import Reject
from .plan import MixPlan, drop
from .probes import seeded_rng
from .spread import SpreadReport, check_spread
from .totals import choose_totals, plan_counts


class TrainSelection(BaseModel):
    """Which candidates train, the exact totals, and the spread check's verdicts."""

    model_config = ConfigDict(extra="forbid")

    train: list[str]
    beneficial: int
    standard: int
    total: int
    spread: dict[str, Any]
    rubric_spread: dict[str, float | None]
    dropped: list[Reject]


def spread_stage(plan: MixPlan) -> SpreadReport:
    """Sample and grade answers for every training candidate (the only stage that runs models)."""
    config = plan.config
    progress.report("mix", step="spread check", scenarios=len(plan.candidates))
    return check_spread(
        [plan.scenarios[i] for i in plan.candidates],
        config.spread,
        seed=plan.seed,
        prompts=PromptSet(config.prompts),
        cache_dir=config.cache_root() / "spread",
    )


def select_stage(plan: MixPlan, spread: SpreadReport) -> TrainSelection:
    """Apply the spread check, choose the exact totals and the beneficial rows."""
    recipe = plan.resolved.recipe
    keep_flagged = plan.config.spread.keep_flagged
    dropped: list[Reject] = []
    passing = []
    for sid in plan.candidates:
        result = spread.results.get(sid)
        if result is not None and result.flag is not None and not keep_flagged:
            detail = f"scores {result.scores}" if result.flag == "flat" else f"{sum(s is not None for s in result.scores)} of {len(result.scores)} answers scoreable"
            dropped.append(drop(plan.scenarios[sid], f"spread_{result.flag}", detail))
        else:
            passing.append(sid)
    p, q = plan.fraction.numerator, plan.fraction.denominator
    counts = plan_counts(plan.loaded, plan.heldout, plan.dropped + dropped)
    b, s, t = choose_totals(
        p, q, len(passing), recipe.total_rows, plan.base.n_rows, plan.config.allow_smaller, recipe.standard_only,
        recipe.name, counts,
    )
    order = [passing[i] for i in seeded_rng(recipe.seed, 4).permutation(len(passing))]
    chosen, unused = order[:b], order[b:]  # chosen stays in seeded random order: the train split's order
    dropped += [drop(plan.scenarios[i], "not_needed", f"the ratio uses {b} of {len(passing)}") for i in sorted(unused)]
    if recipe.standard_only:
        s = t  # the control: all T rows standard
    return TrainSelection(
        train=chosen,
        beneficial=0 if recipe.standard_only else b,
        standard=s,
        total=t,
        spread=spread.summary(keep_flagged),
        rubric_spread={sid: r.spread for sid, r in spread.results.items()},
        dropped=dropped,
    )
