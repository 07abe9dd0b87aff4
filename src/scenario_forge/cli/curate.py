"""``scenario-forge curate RUN...``: re-curate existing runs from their generated scenarios."""

from __future__ import annotations

from pathlib import Path

from ..curation.config import CurateConfig
from ._common import as_json, console, fail
from .options import Given, config_command, run_job
from .summary import print_run_summary, run_progress

#: The job this command runs, without and with Prefect (``--orchestrator``).
DIRECT, FLOW = "scenario_forge.curation.run:curate_runs", "flows.curate:curate_flow"


@config_command(CurateConfig)
def curate(given: Given[CurateConfig]) -> None:
    """Re-curate runs: quality gates, LLM judge, sign checks, near-duplicates, report. No regeneration."""
    cfg = given.build()
    from ..curation.run import check_inputs

    check_inputs(cfg)  # bad input fails here, before Prefect or any model starts
    from contextlib import ExitStack

    from .. import runlock

    with ExitStack() as locks:  # one writer per run folder
        for run in sorted({Path(r).resolve() for r in cfg.runs}):
            locks.enter_context(runlock.hold(runlock.run_lock(run), f"run folder {run}"))
        locks.enter_context(run_progress(console))
        manifests = as_json(run_job(given.orchestrator, cfg, DIRECT, FLOW))
    for manifest in manifests:
        print_run_summary(manifest)
    from .generate import nothing_kept

    reasons = [nothing_kept(m, Path(r)) for r, m in zip(cfg.runs, manifests)]
    if reasons and all(reasons):  # every file is written; the exit says that nothing was kept
        fail("; ".join(r for r in reasons if r), 1)
