"""The ``curate`` flow: re-curate existing runs, one task per step of
:data:`~scenario_forge.curation.run.CURATE_STEPS` (the list ``scenario-forge curate`` runs directly)."""

from __future__ import annotations

from prefect import flow

from scenario_forge.curation.config import CurateConfig
from scenario_forge.curation.run import curate_with
from scenario_forge.manifest import Manifest
from scenario_forge.orchestration.prefect_steps import run_steps_as_tasks


@flow(name="curate", validate_parameters=True)
def curate_flow(config: CurateConfig) -> list[Manifest]:
    """Re-curate ``config.runs`` together and return their new manifests."""
    return curate_with(config, run_steps_as_tasks)
