"""The ``mix`` flow: plan, spread check, select, contamination guard, write (one task per stage)."""

from __future__ import annotations

from typing import Any

from flows import _prefect_env

_prefect_env.apply()

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from scenario_forge import runlock  # noqa: E402
from scenario_forge.mixing.config import MixConfig  # noqa: E402
from scenario_forge.mixing.run import (  # noqa: E402
    Guarded,
    MixPlan,
    Selection,
    guard_stage,
    plan_mixture,
    select_stage,
    spread_stage,
    write_stage,
)
from scenario_forge.mixing.spread import SpreadReport  # noqa: E402


@task(name="plan-mixture", cache_policy=NO_CACHE)
def plan_task(config: MixConfig) -> MixPlan:
    return plan_mixture(config)


@task(name="spread-check", tags=["llm"], cache_policy=NO_CACHE)
def spread_task(plan: MixPlan) -> SpreadReport:
    return spread_stage(plan)


@task(name="select-rows", cache_policy=NO_CACHE)
def select_task(plan: MixPlan, spread: SpreadReport) -> Selection:
    return select_stage(plan, spread)


@task(name="contamination-guard", cache_policy=NO_CACHE)
def guard_task(plan: MixPlan, selection: Selection) -> Guarded:
    return guard_stage(plan, selection)


@task(name="write-mixture", cache_policy=NO_CACHE)
def write_task(plan: MixPlan, selection: Selection, guarded: Guarded) -> dict[str, Any]:
    return write_stage(plan, selection, guarded).model_dump(mode="json")


@flow(name="mix", validate_parameters=True)
def mix_flow(config: MixConfig) -> dict[str, Any]:
    """Build the mixture in ``config.out`` and return its ``mixture.json`` contents."""
    # One writer per mixture folder (re-entrant: the CLI that started this flow already holds it).
    with runlock.hold(runlock.sibling_lock(config.out), f"mixture folder {config.out}"):
        plan = plan_task(config)
        spread = spread_task(plan)
        selection = select_task(plan, spread)
        guarded = guard_task(plan, selection)
        return write_task(plan, selection, guarded)
