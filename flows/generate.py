"""The ``generate`` flow: plan, generate shard by shard (one task per shard), finalize and curate."""

from __future__ import annotations

import time
from typing import Any

from flows import _prefect_env

_prefect_env.apply()

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402

from scenario_forge.config import GenerateConfig  # noqa: E402
from scenario_forge.generation.run import (  # noqa: E402
    PreparedRun,
    finalize_run,
    prepare_run,
    run_shard,
)
from scenario_forge.store import ShardSpec, ShardSummary  # noqa: E402


@task(name="prepare-run", cache_policy=NO_CACHE)
def prepare_task(config: GenerateConfig) -> PreparedRun:
    return prepare_run(config)


@task(name="generate-shard", tags=["llm"], cache_policy=NO_CACHE)
def shard_task(run: PreparedRun, shard: ShardSpec) -> ShardSummary:
    return run_shard(run, shard)


@task(name="finalize-run", cache_policy=NO_CACHE)
def finalize_task(run: PreparedRun, summaries: list[ShardSummary], wall_s: float) -> dict[str, Any]:
    return finalize_run(run, summaries, wall_s).model_dump(mode="json")


@flow(name="generate", validate_parameters=True, task_runner=ThreadPoolTaskRunner(max_workers=2))
def generate_flow(config: GenerateConfig) -> dict[str, Any]:
    """Generate scenarios into ``OUT/RUN_ID`` and return the run's manifest."""
    start = time.perf_counter()
    run = prepare_task(config)
    futures = [shard_task.submit(run, shard) for shard in run.shards]
    summaries = [f.result() for f in futures]
    return finalize_task(run, summaries, time.perf_counter() - start)


def generate_flow_for(config: GenerateConfig):
    """The flow with ``config.shard_workers`` shards in flight at once (the CLI's way in)."""
    return generate_flow.with_options(task_runner=ThreadPoolTaskRunner(max_workers=config.shard_workers))
