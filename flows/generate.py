"""The ``generate`` flow: the steps of :func:`~scenario_forge.generation.run.generate_steps` (the
list ``--orchestrator direct`` runs), each a task of the same name; one task per shard.

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

from prefect import flow

from scenario_forge.config import GenerateConfig
from scenario_forge.generation.run import generate_with
from scenario_forge.manifest import Manifest
from scenario_forge.orchestration.runners import TaskRunnerConfig
from scenario_forge.orchestration.shards import prefect_runner

THREADS = TaskRunnerConfig()


@flow(name="generate", validate_parameters=True)
def generate_flow(config: GenerateConfig, runner: TaskRunnerConfig = THREADS) -> Manifest:
    """Generate scenarios into ``OUT/RUN_ID`` and return the run's manifest."""
    return generate_with(config, prefect_runner(runner))
