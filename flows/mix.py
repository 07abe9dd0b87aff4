"""The ``mix`` flow: the mix job's steps (``scenario_forge.mixing.run.MIX_STEPS``), one task each."""

from __future__ import annotations

from prefect import flow

from scenario_forge.mixing.config import MixConfig
from scenario_forge.mixing.run import mix_with
from scenario_forge.mixture import MixtureMeta
from scenario_forge.orchestration.prefect_steps import run_steps_as_tasks


@flow(name="mix", validate_parameters=True)
def mix_flow(config: MixConfig) -> MixtureMeta:
    """Build the mixture in ``config.out`` and return its ``mixture.json``."""
    return mix_with(config, run_steps_as_tasks)
