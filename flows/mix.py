"""The ``mix`` flow: the mix job's steps (``scenario_forge.mixing.run.MIX_STEPS``), one task each."""

from __future__ import annotations

from flows import _prefect_env

_prefect_env.apply()

from prefect import flow  # noqa: E402

from scenario_forge.mixing.config import MixConfig  # noqa: E402
from scenario_forge.mixing.run import mix_with  # noqa: E402
from scenario_forge.mixture import MixtureMeta  # noqa: E402
from scenario_forge.orchestration.prefect_steps import run_steps_as_tasks  # noqa: E402


@flow(name="mix", validate_parameters=True)
def mix_flow(config: MixConfig) -> MixtureMeta:
    """Build the mixture in ``config.out`` and return its ``mixture.json``."""
    return mix_with(config, run_steps_as_tasks)
