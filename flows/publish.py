"""The ``publish`` flow: :data:`~scenario_forge.publishing.run.PUBLISH_STEPS` (build the Hub-layout
folder, push it), each a task of the same name (the list ``--orchestrator direct`` runs)."""

from __future__ import annotations

from prefect import flow

from scenario_forge.orchestration.prefect_steps import run_steps_as_tasks
from scenario_forge.publishing.build import PublishResult
from scenario_forge.publishing.config import PublishConfig
from scenario_forge.publishing.run import publish_with


@flow(name="publish", validate_parameters=True)
def publish_flow(config: PublishConfig) -> PublishResult:
    """Publish a run or a mixture; returns the folder, its configs and the repo URL if pushed."""
    return publish_with(config, run_steps_as_tasks)
