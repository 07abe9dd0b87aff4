"""The mix job, declared once: :data:`MIX_STEPS` (plan, spread check, select, contamination guard,
write) over one state record, :class:`MixJob`.

:func:`run_mix` runs the list in this process; the Prefect ``mix`` flow (``flows/mix.py``) runs the
same list with each step a task of the same name (:func:`mix_with` is the one wrapper both use).
Every scenario loaded ends in exactly one place -- the train split, a held-out split, or
``dropped.parquet`` with its stage and reason -- and ``mixture.json`` checks that the counts add up.
Nothing is written to ``--out`` until the last step, which builds the whole mixture in a staging
folder and swaps it in, so a failed or interrupted mix leaves any earlier mixture untouched.

>>> from scenario_forge.steps import step_names
>>> step_names(MIX_STEPS)
['plan-mixture', 'spread-check', 'select-rows', 'contamination-guard', 'write-mixture']
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from .. import runlock
from ..mixture import MixtureMeta
from ..staging import staging_for
from ..steps import AnyStep, Runner, Step, run_steps
from .config import MixConfig
from .guard import Guarded, guard_stage
from .plan import MixPlan, plan_mixture
from .selection import TrainSelection, select_stage, spread_stage
from .spread import SpreadReport
from .write import write_stage

T = TypeVar("T")


def _need(value: T | None, what: str) -> T:
    if value is None:
        raise RuntimeError(f"mix step order: {what} is not there yet")  # a wrong MIX_STEPS, never bad input
    return value


@dataclass(frozen=True)
class MixJob:
    """The mix job's state: its config and staging folder, then what each step adds."""

    config: MixConfig
    staging: Path
    plan: MixPlan | None = None
    spread: SpreadReport | None = None
    selection: TrainSelection | None = None
    guarded: Guarded | None = None
    meta: MixtureMeta | None = None

    def need_plan(self) -> MixPlan:
        return _need(self.plan, "the plan")

    def need_meta(self) -> MixtureMeta:
        return _need(self.meta, "mixture.json")


def plan_step(job: MixJob) -> MixJob:
    return replace(job, plan=plan_mixture(job.config, job.staging))


def spread_step(job: MixJob) -> MixJob:
    return replace(job, spread=spread_stage(job.need_plan()))


def select_step(job: MixJob) -> MixJob:
    return replace(job, selection=select_stage(job.need_plan(), _need(job.spread, "the spread check")))


def guard_step(job: MixJob) -> MixJob:
    return replace(job, guarded=guard_stage(job.need_plan(), _need(job.selection, "the selection")))


def write_step(job: MixJob) -> MixJob:
    plan, selection = job.need_plan(), _need(job.selection, "the selection")
    return replace(job, meta=write_stage(plan, selection, _need(job.guarded, "the guard"), job.staging))


#: The mix job: the one list both runners run (the names are the Prefect task names).
MIX_STEPS: list[AnyStep[MixJob]] = [
    Step("plan-mixture", plan_step, needs=("config", "staging"), gives=("plan",)),
    Step("spread-check", spread_step, tags=("llm",), needs=("plan",), gives=("spread",)),
    Step("select-rows", select_step, needs=("plan", "spread"), gives=("selection",)),
    Step("contamination-guard", guard_step, needs=("plan", "selection"), gives=("guarded",)),
    Step("write-mixture", write_step, needs=("plan", "selection", "guarded", "staging"), gives=("meta",)),
]


def mix_with(config: MixConfig, runner: Runner[MixJob]) -> MixtureMeta:
    """Run :data:`MIX_STEPS` with ``runner``, holding the mixture folder's lock (one writer per
    ``--out``; re-entrant) and its staging folder (cleared before, removed after a failure)."""
    lock = runlock.hold(runlock.sibling_lock(config.out), f"mixture folder {config.out}")
    with lock, staging_for(config.out) as staging:
        return runner(MIX_STEPS, MixJob(config=config, staging=staging)).need_meta()


def run_mix(config: MixConfig) -> MixtureMeta:
    """The mix job without an orchestrator: :data:`MIX_STEPS`, called in order in this process."""
    return mix_with(config, run_steps)
