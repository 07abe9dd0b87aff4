"""``scenario-forge curate RUN...``: re-curate existing runs from their generated scenarios."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..curation.config import CurateConfig
from ._common import build_config, console, fail, guarded
from .summary import print_run_summary, shard_progress


def curate(
    runs: Annotated[Optional[list[Path]], typer.Argument(help="Run folders (OUT/RUN_ID) of one output store.", show_default=False)] = None,
    threshold: Annotated[Optional[float], typer.Option("--threshold", help="Near-duplicate cosine threshold in (0, 1] (default 0.9).")] = None,
    embedding_model: Annotated[Optional[str], typer.Option("--embedding-model", help="sentence-transformers model folder.")] = None,
    judge: Annotated[Optional[bool], typer.Option("--judge/--no-judge", help="LLM judge quality gate and sign checks (default on).")] = None,
    judge_threshold: Annotated[Optional[float], typer.Option("--judge-threshold", help="Minimum mean judge score, 1-5 (default 2).")] = None,
    sign_checks: Annotated[Optional[bool], typer.Option("--sign-checks/--no-sign-checks", help="Check rubric signs with the judge (default on).")] = None,
    keep_unscoreable: Annotated[Optional[bool], typer.Option("--keep-unscoreable/--drop-unscoreable", help="Keep scenarios the judge could not score (default keep).")] = None,
    cross_run: Annotated[Optional[bool], typer.Option("--cross-run/--no-cross-run", help="Dedup against runs already kept in the store (default on).")] = None,
    judge_backend: Annotated[Optional[str], typer.Option("--judge-backend", help="Judge backend kind (default: the run's generation backend).")] = None,
    judge_model: Annotated[Optional[str], typer.Option("--judge-model", help="Judge model: GGUF path, server model name or HF id.")] = None,
    judge_base_url: Annotated[Optional[str], typer.Option("--judge-base-url", help="OpenAI-compatible server URL for the judge.")] = None,
    min_turn_words: Annotated[Optional[int], typer.Option("--min-turn-words", help="Shortest allowed turn (default 4 words).")] = None,
    max_turn_words: Annotated[Optional[int], typer.Option("--max-turn-words", help="Longest allowed turn (default 180 words).")] = None,
    figures: Annotated[Optional[bool], typer.Option("--figures/--no-figures", help="Draw the report's PNG figures (default on).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML file of CurateConfig fields; flags override it.")] = None,
    orchestrator: Annotated[str, typer.Option("--orchestrator", help="prefect (default) or direct (no Prefect).")] = "prefect",
) -> None:
    """Re-curate runs: quality gates, LLM judge, sign checks, near-duplicates, report. No regeneration."""
    _run(locals())


@guarded
def _run(args: dict[str, Any]) -> None:
    judge_backend = {
        "curation.judge_backend.kind": args["judge_backend"],
        "curation.judge_backend.model": args["judge_model"],
        "curation.judge_backend.base_url": args["judge_base_url"],
    }
    cfg = build_config(
        CurateConfig,
        args["config"],
        {
            "runs": [str(p) for p in args["runs"]] if args["runs"] else None,
            "curation.threshold": args["threshold"],
            "curation.embedding_model": args["embedding_model"],
            "curation.judge": args["judge"],
            "curation.judge_threshold": args["judge_threshold"],
            "curation.sign_checks": args["sign_checks"],
            "curation.keep_unscoreable": args["keep_unscoreable"],
            "curation.cross_run": args["cross_run"],
            "curation.min_turn_words": args["min_turn_words"],
            "curation.max_turn_words": args["max_turn_words"],
            "curation.figures": args["figures"],
            **judge_backend,
        },
    )
    if args["orchestrator"] not in ("prefect", "direct"):
        from ..errors import ConfigError

        raise ConfigError(f"--orchestrator must be 'prefect' or 'direct', got {args['orchestrator']!r}")
    from ..curation.run import check_inputs

    check_inputs(cfg)  # bad input fails here, before Prefect or any model starts
    from contextlib import ExitStack

    from .. import runlock

    with ExitStack() as locks:  # one writer per run folder
        for run in sorted({Path(r).resolve() for r in cfg.runs}):
            locks.enter_context(runlock.hold(runlock.run_lock(run), f"run folder {run}"))
        locks.enter_context(shard_progress(console))
        if args["orchestrator"] == "direct":
            from ..curation.run import curate_runs

            manifests = curate_runs(cfg)
        else:
            from flows.curate import curate_flow
            from ..orchestration.local_api import run_flow_from_cli

            manifests = run_flow_from_cli(curate_flow, config=cfg)
    for manifest in manifests:
        print_run_summary(manifest)
    from .generate import nothing_kept

    reasons = [nothing_kept(m, Path(r)) for r, m in zip(cfg.runs, manifests)]
    if reasons and all(reasons):  # every file is written; the exit says that nothing was kept
        fail("; ".join(r for r in reasons if r), 1)
