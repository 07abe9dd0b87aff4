"""``scenario-forge generate``: plan, generate, curate; a progress bar and a summary table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..config import GenerateConfig
from ._common import build_config, console, guarded
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
    curate: Annotated[Optional[bool], typer.Option("--curate/--no-curate", help="Curate after generating (default on).")] = None,
    judge: Annotated[Optional[bool], typer.Option("--judge/--no-judge", help="LLM judge quality gate (default on).")] = None,
    threshold: Annotated[Optional[float], typer.Option("--threshold", help="Near-duplicate cosine threshold (default 0.9).")] = None,
    embedding_model: Annotated[Optional[str], typer.Option("--embedding-model", help="sentence-transformers model folder.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML file of GenerateConfig fields; flags override it.")] = None,
    orchestrator: Annotated[str, typer.Option("--orchestrator", help="prefect (default) or direct (no Prefect).")] = "prefect",
) -> None:
    """Generate multi-turn pressure scenarios with rubrics into OUT/RUN_ID."""
    _run(locals())


#: Config fields -> the flags that set them (for error messages).
FLAGS = {
    "domains": "--domain", "traits": "--trait", "n": "--n", "seed": "--seed", "shard_size": "--shard-size",
    "out": "--out", "run_id": "--run-id", "taxonomy": "--taxonomy", "prompts": "--prompts",
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
    from ..generation.run import plan_run

    plan_run(cfg)  # bad input fails here, before Prefect or any model starts
    from ..backends.factory import get_backend

    get_backend(cfg.backend)  # unreachable server, wrong model or key, missing extra: one line, nothing written
    with shard_progress(console):
        if args["orchestrator"] == "direct":
            from ..generation.run import run_generate_direct

            manifest = run_generate_direct(cfg).model_dump(mode="json")
        else:
            from flows.generate import generate_flow
            from ..orchestration.local_api import run_flow_from_cli

            manifest = run_flow_from_cli(generate_flow, config=cfg)
    print_run_summary(manifest)
