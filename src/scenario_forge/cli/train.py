"""``scenario-forge train``: GRPO on a mixture with routed rubric rewards, or SFT on a pack (``--sft``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from ..errors import ConfigError
from ..training.config import TrainConfig
from ._common import as_json, build_config
from .options import Given, config_command, run_job

#: The job this command runs, without and with Prefect (``--orchestrator``).
DIRECT, FLOW = "scenario_forge.training.trainer:train", "flows.train_eval:train_flow"


@config_command(TrainConfig)
def train(
    given: Given[TrainConfig],
    sft: Annotated[Optional[str], typer.Option("--sft", help="Supervised fine-tuning on a JSONL pack instead of GRPO (a file, or 'harmful_medical_sft').")] = None,
) -> None:
    """Train a policy with GRPO on a mixture (rubric / generic-judge / exact-match rewards by row),
    or fine-tune it on an SFT pack (--sft)."""
    if sft is not None:
        _run_sft(given, sft)
        return
    cfg = given.build()
    result = as_json(run_job(given.orchestrator, cfg, DIRECT, FLOW))
    _print_train(result)


def _run_sft(given: Given[TrainConfig], sft: str) -> None:
    """``--sft``: the flags that also configure a pack fine-tune, laid over an SFTPackConfig."""
    from ..training.config import SFTPackConfig

    grpo_only = [path for path in given.given() if path.split(".")[0] not in SFTPackConfig.model_fields]
    if grpo_only:
        raise ConfigError(f"--sft fine-tunes on a pack; {given.flags[grpo_only[0]]} applies to GRPO only")
    values = {**given.values, "data": sft}
    cfg = build_config(SFTPackConfig, given.file, values, {**given.flags, "data": "--sft"})
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
