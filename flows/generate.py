"""The ``generate`` flow: plan, generate shard by shard (one task per shard), finalize and curate.

Parameters are the CLI's own :class:`~scenario_forge.config.GenerateConfig` (the Prefect UI renders
it as a form; a bad domain or ``n <= 0`` fails parameter validation before any model loads) and a
:class:`~scenario_forge.orchestration.TaskRunnerConfig` saying where the shard tasks run.

Resume: shard tasks are keyed by the shard's content key (seeds, templates, model, sampling,
taxonomy). The key names the shard's files in the run folder, and a shard whose ``.done.json``
marker carries that key returns its saved summary without loading a model. We do not also use
Prefect's result cache (``cache_key_fn`` + ``persist_result``): it would keep a second copy of
the answer (in Prefect's result storage, which every worker would have to share) that can
disagree with the data on disk, e.g. after the run folder is deleted or moved. The marker is
written last, atomically, next to the data it vouches for. See ``docs/prefect.md``.
"""

from __future__ import annotations

import time
from typing import Any

from flows import _prefect_env

_prefect_env.apply()

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.utilities.annotations import quote  # noqa: E402

from scenario_forge import runlock  # noqa: E402
from scenario_forge.config import GenerateConfig  # noqa: E402
from scenario_forge.generation.run import (  # noqa: E402
    PreparedRun,
    finalize_run,
    prepare_run,
    run_shard,
)
from scenario_forge.orchestration.artifacts import RunArtifacts  # noqa: E402
from scenario_forge.orchestration.runners import TaskRunnerConfig  # noqa: E402
from scenario_forge.orchestration.shards import run_shards, shard_slot, shard_task_name  # noqa: E402
from scenario_forge.store import ShardSpec, ShardSummary  # noqa: E402

#: Tag of every task that sends requests to a model: cap them with
#: ``prefect concurrency-limit create llm N`` (see docs/prefect.md).
LLM_TAG = "llm"


@task(name="prepare-run", cache_policy=NO_CACHE)
def prepare_task(config: GenerateConfig) -> PreparedRun:
    return prepare_run(config)


@task(name="generate-shard", tags=[LLM_TAG], cache_policy=NO_CACHE, task_run_name=shard_task_name)
def shard_task(run: PreparedRun, shard: ShardSpec) -> ShardSummary:
    with shard_slot(run.run_id):  # shard_workers at a time; Prefect's API calls overlap the work
        return run_shard(run, shard)


@task(name="finalize-run", cache_policy=NO_CACHE)
def finalize_task(run: PreparedRun, summaries: list[ShardSummary], wall_s: float) -> dict[str, Any]:
    return finalize_run(run, summaries, wall_s).model_dump(mode="json")


THREADS = TaskRunnerConfig()


@flow(name="generate", validate_parameters=True)
def generate_flow(config: GenerateConfig, runner: TaskRunnerConfig = THREADS) -> dict[str, Any]:
    """Generate scenarios into ``OUT/RUN_ID`` and return the run's manifest."""
    start = time.perf_counter()
    run = prepare_task(config)  # claims the folder (writes run.json, the same bytes for the same run)
    # One writer per run folder (re-entrant: the CLI that started this flow already holds it).
    with runlock.hold(runlock.run_lock(run.root), f"run folder {run.root}"):
        artifacts = RunArtifacts("generate", run.run_id, len(run.shards))
        summaries = run_shards(shard_task, run, runner, on_done=artifacts.shard_done)
        # Curation's LLM judge makes finalize model-bound too: it then counts against the llm limit.
        judged = config.curate and config.curation.judge
        finalize = finalize_task.with_options(tags=[LLM_TAG]) if judged else finalize_task
        # quote(): Prefect need not walk the whole plan looking for futures (see orchestration/shards.py).
        manifest = finalize(quote(run), quote(summaries), time.perf_counter() - start)
        artifacts.finish(run.shards, run.root / manifest["files"]["scenarios"], manifest)
        return manifest
