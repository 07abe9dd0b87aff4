"""``scenario-forge train``: GRPO on a mixture with routed rubric rewards, or SFT on a pack (``--sft``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from ..errors import ConfigError
from ._common import build_config, guarded


def train(
    mixture: Annotated[Optional[Path], typer.Option("--mixture", help="Mixture folder from `scenario-forge mix` (GRPO).")] = None,
    policy: Annotated[Optional[str], typer.Option("--policy", help="'embedded' (SmolLM2-135M-Instruct), a .gguf file or a Hugging Face model folder.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Output folder: checkpoints, logs, final/ (default outputs/train).")] = None,
    resume: Annotated[Optional[bool], typer.Option("--resume", help="Continue from the last checkpoint in --out.")] = None,
    sft: Annotated[Optional[str], typer.Option("--sft", help="Supervised fine-tuning on a JSONL pack instead of GRPO (a file, or 'harmful_medical_sft').")] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="Split to train on (default: the mixture's train split).")] = None,
    max_rows: Annotated[Optional[int], typer.Option("--max-rows", help="Train on the first N rows only.")] = None,
    judge_backend: Annotated[Optional[str], typer.Option("--judge-backend", help="Backend grading rubric/generic rewards: embedded (default), llamacpp, openai, transformers.")] = None,
    judge_model: Annotated[Optional[str], typer.Option("--judge-model", help="Judge model: GGUF path, server model name or HF folder.")] = None,
    judge_base_url: Annotated[Optional[str], typer.Option("--judge-base-url", help="OpenAI-compatible server for the judge.")] = None,
    require_qualified_judge: Annotated[Optional[bool], typer.Option("--require-qualified-judge", help="Refuse to start unless the judge passed `scenario-forge judge check` (macro-F1 >= 0.7).")] = None,
    learning_rate: Annotated[Optional[float], typer.Option("--learning-rate", "--lr", help="Learning rate (GRPO default 1e-6, SFT 2e-5).")] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", help="Optimizer steps (overrides --epochs).")] = None,
    epochs: Annotated[Optional[float], typer.Option("--epochs", help="Epochs over the rows (default 1).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Completions (GRPO) or rows (SFT) per device step.")] = None,
    grad_accum: Annotated[Optional[int], typer.Option("--grad-accum", help="Gradient accumulation steps.")] = None,
    num_generations: Annotated[Optional[int], typer.Option("--num-generations", help="GRPO group size: completions per prompt (default 4).")] = None,
    max_completion_length: Annotated[Optional[int], typer.Option("--max-completion-length", help="GRPO: max new tokens per completion (default 256).")] = None,
    beta: Annotated[Optional[float], typer.Option("--beta", help="GRPO KL coefficient (default 0: no reference model).")] = None,
    loss_type: Annotated[Optional[str], typer.Option("--loss-type", help="GRPO loss: dapo (default), grpo, dr_grpo, bnpo, cispo, sapo.")] = None,
    temperature: Annotated[Optional[float], typer.Option("--temperature", help="GRPO sampling temperature (default 1.0).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed (default 0).")] = None,
    save_steps: Annotated[Optional[int], typer.Option("--save-steps", help="Checkpoint every N steps (default 50).")] = None,
    logging_steps: Annotated[Optional[int], typer.Option("--logging-steps", help="Log every N steps (default 1).")] = None,
    use_vllm: Annotated[Optional[bool], typer.Option("--use-vllm", help="GRPO generation with vLLM (GPU; see docs/training.md).")] = None,
    vllm_mode: Annotated[Optional[str], typer.Option("--vllm-mode", help="colocate (default) or server.")] = None,
    vllm_server_base_url: Annotated[Optional[str], typer.Option("--vllm-server-base-url", help="`trl vllm-serve` URL (server mode).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML file of TrainConfig (or SFTPackConfig with --sft) fields; flags override it.")] = None,
    orchestrator: Annotated[str, typer.Option("--orchestrator", help="direct (default) or prefect.")] = "direct",
) -> None:
    """Train a policy with GRPO on a mixture (rubric / generic-judge / exact-match rewards by row),
    or fine-tune it on an SFT pack (--sft)."""
    _run(locals())


#: config field -> the flag that sets it (error messages name the flag)
FLAGS = {
    "mixture": "--mixture", "policy": "--policy", "out": "--out", "split": "--split", "max_rows": "--max-rows",
    "learning_rate": "--learning-rate", "max_steps": "--max-steps", "epochs": "--epochs", "batch_size": "--batch-size",
    "gradient_accumulation_steps": "--grad-accum", "num_generations": "--num-generations",
    "max_completion_length": "--max-completion-length", "beta": "--beta", "loss_type": "--loss-type",
    "temperature": "--temperature", "seed": "--seed", "save_steps": "--save-steps", "logging_steps": "--logging-steps",
    "vllm_mode": "--vllm-mode", "vllm_server_base_url": "--vllm-server-base-url", "data": "--sft",
    "judge.kind": "--judge-backend", "judge.model": "--judge-model", "judge.base_url": "--judge-base-url",
    "require_qualified_judge": "--require-qualified-judge",
}


def _s(p: Path | None) -> str | None:
    return str(p) if p is not None else None


@guarded
def _run(args: dict[str, Any]) -> None:
    if args["orchestrator"] not in ("prefect", "direct"):
        raise ConfigError(f"--orchestrator must be 'prefect' or 'direct', got {args['orchestrator']!r}")
    if args["sft"] is not None:
        _run_sft(args)
        return
    from ..evaluation.backends import infer_kind
    from ..training.config import TrainConfig

    judge = {}
    if any(args[k] for k in ("judge_backend", "judge_model", "judge_base_url")):
        judge = {
            "judge.kind": args["judge_backend"] or infer_kind(args["judge_model"], args["judge_base_url"]),
            "judge.model": args["judge_model"],
            "judge.base_url": args["judge_base_url"],
        }
    cfg = build_config(
        TrainConfig,
        args["config"],
        {
            "mixture": _s(args["mixture"]),
            "policy": args["policy"],
            "out": _s(args["out"]),
            "resume": args["resume"],
            "split": args["split"],
            "max_rows": args["max_rows"],
            "learning_rate": args["learning_rate"],
            "max_steps": args["max_steps"],
            "epochs": args["epochs"],
            "batch_size": args["batch_size"],
            "gradient_accumulation_steps": args["grad_accum"],
            "num_generations": args["num_generations"],
            "max_completion_length": args["max_completion_length"],
            "beta": args["beta"],
            "loss_type": args["loss_type"],
            "temperature": args["temperature"],
            "seed": args["seed"],
            "save_steps": args["save_steps"],
            "logging_steps": args["logging_steps"],
            "use_vllm": args["use_vllm"],
            "vllm_mode": args["vllm_mode"],
            "vllm_server_base_url": args["vllm_server_base_url"],
            "require_qualified_judge": args["require_qualified_judge"],
            **judge,
        },
        FLAGS,
    )
    if args["orchestrator"] == "prefect":
        from flows.train_eval import train_flow

        from ..orchestration.local_api import run_flow_from_cli

        result = run_flow_from_cli(train_flow, config=cfg)
    else:
        from ..training.trainer import train as run_train

        result = run_train(cfg).model_dump(mode="json")
    _print_train(result)


def _run_sft(args: dict[str, Any]) -> None:
    from ..training.config import SFTPackConfig

    unused = [k for k in ("mixture", "split", "num_generations", "max_completion_length", "beta", "loss_type",
                          "temperature", "use_vllm", "judge_backend", "judge_model", "judge_base_url",
                          "require_qualified_judge") if args[k] is not None]
    if unused:
        raise ConfigError(f"--sft fine-tunes on a pack; --{unused[0].replace('_', '-')} applies to GRPO only")
    cfg = build_config(
        SFTPackConfig,
        args["config"],
        {
            "data": args["sft"],
            "policy": args["policy"],
            "out": _s(args["out"]),
            "resume": args["resume"],
            "max_rows": args["max_rows"],
            "learning_rate": args["learning_rate"],
            "max_steps": args["max_steps"],
            "epochs": args["epochs"],
            "batch_size": args["batch_size"],
            "gradient_accumulation_steps": args["grad_accum"],
            "seed": args["seed"],
            "save_steps": args["save_steps"],
            "logging_steps": args["logging_steps"],
        },
        FLAGS,
    )
    from ..training.sft import finetune_pack

    result = finetune_pack(cfg)
    Console().print(
        f"fine-tuned on {result.rows} pack rows for {result.global_step} steps in {result.wall_s:.0f} s -> {result.final_model}"
    )


def _print_train(result: dict[str, Any], to: Console | None = None) -> None:
    to = to or Console()
    counts = result.get("reward_counts", {})
    resumed = f" (resumed from {result['resumed_from']})" if result.get("resumed_from") else ""
    to.print(f"trained {result['global_step']} steps on {result['rows']} rows of split {result['split']!r}{resumed} "
             f"in {result['wall_s']:.0f} s -> {result['final_model']}")
    kinds = ", ".join(f"{k} {counts[k]}" for k in ("rubric", "generic_judge", "exact_match") if counts.get(k))
    to.print(f"rewards: {counts.get('completions', 0)} completions scored ({kinds}); "
             f"{counts.get('unscoreable', 0)} unscoreable (advantage 0, excluded from group baselines)")
    to.print(f"logs: {Path(result['out']) / 'rewards.jsonl'}, {Path(result['out']) / 'train_log.jsonl'}")
