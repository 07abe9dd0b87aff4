"""The ``experiment`` flow: :data:`~scenario_forge.experiment.run.EXPERIMENT_STEPS` (plan, mix each
arm, match compute, train each arm, evaluate the baseline, evaluate each arm, report), each a task
of the same name, one task run per arm in the fan-outs (the list ``--orchestrator direct`` runs).

A rerun with the same parameters resumes per arm: finished mixes, trainings and evaluations are
kept (their ``OUT/arms/ARM/*.done.json`` markers), an interrupted training continues from its last
checkpoint."""

from __future__ import annotations

from prefect import flow

from scenario_forge.experiment.config import ExperimentConfig
from scenario_forge.experiment.run import ExperimentResult, experiment_with
from scenario_forge.orchestration.prefect_steps import run_steps_as_tasks


@flow(name="experiment", validate_parameters=True)
def experiment_flow(config: ExperimentConfig) -> ExperimentResult:
    """Run the experiment in ``config.out`` and return its report's figures and files."""
    return experiment_with(config, run_steps_as_tasks)
