"""``scenario-forge curate RUN...``: re-curate existing runs from their generated scenarios."""

from __future__ import annotations

from pathlib import Path

from ..curation.config import CurateConfig
from ._common import as_json, console, fail
from .options import Given, config_command
from .summary import print_run_summary, shard_progress


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
        locks.enter_context(shard_progress(console))
        if given.orchestrator == "direct":
            from ..curation.run import curate_runs

            manifests = as_json(curate_runs(cfg))
        else:
            from flows.curate import curate_flow

            from ..orchestration.local_api import run_flow_from_cli

            manifests = as_json(run_flow_from_cli(curate_flow, config=cfg))
    for manifest in manifests:
        print_run_summary(manifest)
    from .generate import nothing_kept

    reasons = [nothing_kept(m, Path(r)) for r, m in zip(cfg.runs, manifests)]
    if reasons and all(reasons):  # every file is written; the exit says that nothing was kept
        fail("; ".join(r for r in reasons if r), 1)
