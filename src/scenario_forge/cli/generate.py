"""``scenario-forge generate``: plan, generate, curate; a progress bar and a summary table."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..config import GenerateConfig
from ._common import build_config, console, fail, guarded
from .summary import print_run_summary, shard_progress


def generate(
    domain: Annotated[Optional[list[str]], typer.Option("--domain", "-d", help="Domain id or alias (repeatable; default: all).")] = None,
    trait: Annotated[Optional[list[str]], typer.Option("--trait", "-t", help="Trait id or alias (repeatable; default: all).")] = None,
    n: Annotated[Optional[int], typer.Option("--n", help="Number of scenarios to plan (default 20).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Plan and sampling seed (default 0).")] = None,
    backend: Annotated[Optional[str], typer.Option("--backend", help="embedded | llamacpp | openai | vllm | transformers")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="GGUF path, server model name, or HF model id/path.")] = None,
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="OpenAI-compatible server URL (openai backend).")] = None,
    api_key_env: Annotated[Optional[str], typer.Option("--api-key-env", help="Environment variable with the API key.")] = None,
    concurrency: Annotated[Optional[int], typer.Option("--concurrency", help="Requests in flight (openai backend).")] = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", help="Seconds to wait for one answer (openai backend; default 120).")] = None,
    max_retries: Annotated[Optional[int], typer.Option("--max-retries", help="Retries on 429/5xx/connection errors (openai backend; default 4).")] = None,
    parallel: Annotated[Optional[int], typer.Option("--parallel", help="Sequences decoded together (embedded/llamacpp).")] = None,
    structured_output: Annotated[Optional[str], typer.Option("--structured-output", help="auto | off")] = None,
    shard_size: Annotated[Optional[int], typer.Option("--shard-size", help="Scenarios per shard (default 32).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Output store (default ./outputs).")] = None,
    run_id: Annotated[Optional[str], typer.Option("--run-id", help="Run folder name (default: derived from the config).")] = None,
    taxonomy: Annotated[Optional[Path], typer.Option("--taxonomy", help="Taxonomy folder (default: the shipped one).")] = None,
    prompts: Annotated[Optional[Path], typer.Option("--prompts", help="Prompt templates folder (default: the shipped one).")] = None,
    turn_reasks: Annotated[Optional[int], typer.Option("--turn-reasks", help="Re-asks for a turn that fails a lint detector (default 2).")] = None,
    curate: Annotated[Optional[bool], typer.Option("--curate/--no-curate", help="Curate after generating (default on).")] = None,
    judge: Annotated[Optional[bool], typer.Option("--judge/--no-judge", help="LLM judge quality gate (default on).")] = None,
    threshold: Annotated[Optional[float], typer.Option("--threshold", help="Near-duplicate cosine threshold (default 0.9).")] = None,
    embedding_model: Annotated[Optional[str], typer.Option("--embedding-model", help="sentence-transformers model folder.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML file of GenerateConfig fields; flags override it.")] = None,
    orchestrator: Annotated[str, typer.Option("--orchestrator", help="prefect (default) or direct (no Prefect).")] = "prefect",
    plan_only: Annotated[bool, typer.Option("--plan-only", help="Print the plan, its requests and a token estimate; generate and write nothing.")] = False,
) -> None:
    """Generate multi-turn pressure scenarios with rubrics into OUT/RUN_ID."""
    _run(locals())


#: Config fields -> the flags that set them (for error messages).
FLAGS = {
    "domains": "--domain", "traits": "--trait", "n": "--n", "seed": "--seed", "shard_size": "--shard-size",
    "out": "--out", "run_id": "--run-id", "turn_reasks": "--turn-reasks", "taxonomy": "--taxonomy", "prompts": "--prompts",
    "backend.kind": "--backend", "backend.model": "--model", "backend.base_url": "--base-url",
    "backend.api_key_env": "--api-key-env", "backend.concurrency": "--concurrency",
    "backend.parallel_sequences": "--parallel", "backend.structured_output": "--structured-output",
    "curation.threshold": "--threshold", "curation.embedding_model": "--embedding-model",
}


@guarded
def _run(args: dict[str, Any]) -> None:
    cfg = build_config(
        GenerateConfig,
        args["config"],
        {
            "domains": args["domain"],
            "traits": args["trait"],
            "n": args["n"],
            "seed": args["seed"],
            "shard_size": args["shard_size"],
            "out": str(args["out"]) if args["out"] else None,
            "run_id": args["run_id"],
            "taxonomy": str(args["taxonomy"]) if args["taxonomy"] else None,
            "prompts": str(args["prompts"]) if args["prompts"] else None,
            "curate": args["curate"],
            "turn_reasks": args["turn_reasks"],
            "backend.kind": args["backend"],
            "backend.model": args["model"],
            "backend.base_url": args["base_url"],
            "backend.api_key_env": args["api_key_env"],
            "backend.concurrency": args["concurrency"],
            "backend.timeout_s": args["timeout"],
            "backend.max_retries": args["max_retries"],
            "backend.parallel_sequences": args["parallel"],
            "backend.structured_output": args["structured_output"],
            "curation.judge": args["judge"],
            "curation.threshold": args["threshold"],
            "curation.embedding_model": args["embedding_model"],
        },
        FLAGS,
    )
    if args["orchestrator"] not in ("prefect", "direct"):
        from ..errors import ConfigError

        raise ConfigError(f"--orchestrator must be 'prefect' or 'direct', got {args['orchestrator']!r}")
    if args["plan_only"]:
        from ..generation.estimate import estimate_run

        print_plan(estimate_run(cfg))
        return
    from ..generation.run import plan_run

    planned = plan_run(cfg)  # bad input fails here, before Prefect or any model starts
    from .. import runlock
    from ..backends.factory import get_backend

    # One writer per run folder: a second process with the same run id stops here with one line,
    # before it loads a model (a folder made only for the lock is removed again on the way out).
    with runlock.hold(runlock.run_lock(planned.root), f"run folder {planned.root}"):
        get_backend(cfg.backend)  # unreachable server, wrong model or key, missing extra: one line, nothing written
        if cfg.curate and cfg.curation.judge:
            from ..grading.qualification import quality_judge_warning

            line = quality_judge_warning(cfg.backend, cfg.curation.judge_backend)
            if line:
                print(f"warning: generate: {line}", file=sys.stderr)
        with shard_progress(console):
            if args["orchestrator"] == "direct":
                from ..generation.run import run_generate_direct

                manifest = run_generate_direct(cfg).model_dump(mode="json")
            else:
                from flows.generate import generate_flow
                from ..orchestration.local_api import run_flow_from_cli

                manifest = run_flow_from_cli(generate_flow, config=cfg)
    print_run_summary(manifest)
    reason = nothing_kept(manifest, planned.root)
    if reason:
        fail(reason, 1)


def nothing_kept(manifest: dict[str, Any], root: Path) -> str | None:
    """The one-line reason a run that kept 0 scenarios fails with (its files stay), or None.

    >>> nothing_kept({"counts": {"planned": 2, "kept": 0, "deduplicated": 0,
    ...     "rejected_by_reason": {"brief:backend_error": 2}}}, Path("out/r1"))
    '0 of 2 planned scenarios kept (brief:backend_error 2); everything written is in out/r1 (rejects.parquet with each reason, manifest.json)'
    """
    counts = manifest["counts"]
    if counts["kept"] > 0:
        return None
    reasons = dict(counts.get("rejected_by_reason") or {})
    if counts.get("deduplicated"):
        reasons["near-duplicates"] = counts["deduplicated"]
    breakdown = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))) or "no rows"
    return (
        f"0 of {counts['planned']} planned scenarios kept ({breakdown}); everything written is in {root} "
        "(rejects.parquet with each reason, manifest.json)"
    )


def print_plan(p: Any) -> None:
    """The ``--plan-only`` report (a :class:`~scenario_forge.generation.estimate.RunPlan`) on stdout."""
    from rich.console import Console
    from rich.table import Table

    out = Console()
    state = "resumes the run already there" if p.resumes else "new run folder"
    out.print(f"plan: {p.n} scenarios in {p.shards} shards of up to {p.shard_size} -> {p.folder} ({state}); nothing written")
    out.print(f"cells (domain x trait): {len(p.cells)}, {min(p.cells.values())}-{max(p.cells.values())} scenarios each; "
              f"{p.user_turns} user turns; pressures: " + ", ".join(f"{k} {v}" for k, v in p.pressures.items()))
    for title, stages in (("plain-text path (every backend)", {**p.plain, **p.curation}),
                          ("structured path (a backend that takes JSON schemas)", {**p.structured, **p.curation})):
        table = Table(title=f"requests and tokens, first attempts: {title}")
        for col in ("stage", "requests", "prompt tokens <=", "completion tokens <="):
            table.add_column(col, justify="left" if col == "stage" else "right")
        for name, e in {**stages, "total": p.total(stages)}.items():
            table.add_row(name, f"{e.requests:,}", f"{e.prompt_tokens:,}", f"{e.completion_tokens:,}")
        out.print(table)
    out.print("estimate: templates rendered for the first scenario (characters / 4) plus the max_tokens of what each "
              "request carries; completion tokens at each request's max_tokens; re-asks come on top "
              "(see scenario_forge.generation.estimate)")
