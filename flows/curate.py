"""The ``curate`` flow: re-curate existing runs, one task per curation stage (never per row)."""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import Any

from flows import _prefect_env

_prefect_env.apply()

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from scenario_forge import runlock  # noqa: E402
from scenario_forge.config import BackendConfig, CurationConfig  # noqa: E402
from scenario_forge.curation.config import CurateConfig  # noqa: E402
from scenario_forge.curation.run import (  # noqa: E402
    RunInput,
    check_inputs,
    judge_backend_config,
    start_from_runs,
    write_runs,
)
from scenario_forge.curation.stages import (  # noqa: E402
    Batch,
    dedup_stage,
    embed_stage,
    gate_stage,
    judge_stage,
    sign_stage,
)


@task(name="load-runs", cache_policy=NO_CACHE)
def load_task(config: CurateConfig) -> tuple[list[RunInput], Batch, BackendConfig]:
    runs = check_inputs(config)
    return runs, start_from_runs(config, runs), judge_backend_config(config, runs)


@task(name="quality-gates", cache_policy=NO_CACHE)
def gate_task(batch: Batch, config: CurationConfig) -> Batch:
    return gate_stage(batch, config)


@task(name="quality-judge", tags=["llm"], cache_policy=NO_CACHE)
def judge_task(batch: Batch, config: CurationConfig, backend: BackendConfig) -> Batch:
    return judge_stage(batch, config, backend)


@task(name="sign-checks", tags=["llm"], cache_policy=NO_CACHE)
def sign_task(batch: Batch, config: CurationConfig, backend: BackendConfig) -> Batch:
    return sign_stage(batch, config, backend)


@task(name="embed", cache_policy=NO_CACHE)
def embed_task(batch: Batch, config: CurationConfig) -> Batch:
    return embed_stage(batch, config)


@task(name="near-duplicates", cache_policy=NO_CACHE)
def dedup_task(batch: Batch, config: CurationConfig) -> Batch:
    return dedup_stage(batch, config)


@task(name="write-runs", cache_policy=NO_CACHE)
def write_task(batch: Batch, runs: list[RunInput], config: CurateConfig, wall_s: float) -> list[dict[str, Any]]:
    return write_runs(batch.but(timings={**batch.timings, "curation_wall_s": round(wall_s, 3)}), runs, config)


@flow(name="curate", validate_parameters=True)
def curate_flow(config: CurateConfig) -> list[dict[str, Any]]:
    """Re-curate ``config.runs`` together and return their new manifests."""
    start = time.perf_counter()
    # One writer per run folder (re-entrant: the CLI that started this flow already holds them).
    with ExitStack() as locks:
        for run in sorted({r.resolve() for r in config.runs}):
            locks.enter_context(runlock.hold(runlock.run_lock(run), f"run folder {run}"))
        runs, batch, backend = load_task(config)
        batch = gate_task(batch, config.curation)
        batch = judge_task(batch, config.curation, backend)
        batch = sign_task(batch, config.curation, backend)
        batch = embed_task(batch, config.curation)
        batch = dedup_task(batch, config.curation)
        return write_task(batch, runs, config, time.perf_counter() - start)
