"""Typed configuration for ``scenario-forge train`` (GRPO) and the harmful-SFT pack fine-tune.

The fields are GRPO's main knobs under our names; :func:`scenario_forge.training.trainer.grpo_args`
maps them onto TRL's ``GRPOConfig``. A config that validates is a run that can start: batch sizes
that cannot hold whole prompt groups, a vLLM server URL without server mode and similar mistakes
fail here, before any model loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..config import BackendConfig
from ..flags import flag, group
from ..grading.config import GradingConfig

RewardRange = Literal["raw", "clip"]
LossType = Literal["dapo", "grpo", "dr_grpo", "bnpo", "cispo", "sapo"]
Precision = Literal["auto", "fp32", "bf16"]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainConfig(_Config):
    """Everything ``scenario-forge train`` needs; also the Prefect ``train`` flow's parameters."""

    mixture: Path = Field(description="mixture folder (mixture.json + <split>.parquet), from `scenario-forge mix`", json_schema_extra=flag("--mixture"))
    split: str | None = Field(default=None, description="split to train on; default: the mixture's train_split", json_schema_extra=flag("--split"))
    max_rows: int | None = Field(default=None, ge=1, description="train on the first N rows only (smoke runs)", json_schema_extra=flag("--max-rows"))
    policy: str = Field(default="embedded", description="'embedded', a .gguf file, or a Hugging Face model folder", json_schema_extra=flag("--policy"))
    out: Path = Field(default=Path("outputs/train"), description="checkpoints, training log and the final model", json_schema_extra=flag("--out"))
    resume: bool = Field(default=False, description="continue from the last checkpoint in OUT", json_schema_extra=flag("--resume"))
    judge: BackendConfig = Field(
        default=BackendConfig(kind="embedded", parallel_sequences=32),
        description="backend that grades rubric and generic-judge rewards",
        json_schema_extra=group("judge", only=["kind", "model", "base_url"]),
    )
    grading: GradingConfig = Field(default_factory=GradingConfig, description="how the rubric judge is asked (form, tokens, retries)")
    require_qualified_judge: bool = Field(
        default=False, description="refuse to start unless the judge passed `scenario-forge judge check` (macro-F1 >= 0.7)",
        json_schema_extra=flag("--require-qualified-judge"),
    )
    reward_range: RewardRange = Field(
        default="raw",
        description="rubric rewards: raw HealthBench per-example score (may be negative) or clipped to [0, 1] (docs/training.md)",
    )

    # GRPO knobs (TRL's names in brackets where ours differ)
    learning_rate: float = Field(
        default=1e-6, gt=0, le=1.0, description="learning rate (SFT packs: 2e-5)", json_schema_extra=flag("--learning-rate", "--lr")
    )
    max_steps: int | None = Field(default=None, ge=1, description="optimizer steps; overrides epochs when set", json_schema_extra=flag("--max-steps"))
    epochs: float = Field(default=1.0, gt=0, description="[num_train_epochs]", json_schema_extra=flag("--epochs"))
    batch_size: int = Field(default=8, ge=1, description="[per_device_train_batch_size] completions per device step", json_schema_extra=flag("--batch-size"))
    gradient_accumulation_steps: int = Field(default=1, ge=1, description="gradient accumulation steps", json_schema_extra=flag("--grad-accum"))
    num_generations: int = Field(default=4, ge=2, description="completions sampled per prompt (the GRPO group)", json_schema_extra=flag("--num-generations"))
    max_completion_length: int = Field(
        default=256, ge=1, le=32768, description="max new tokens per completion", json_schema_extra=flag("--max-completion-length")
    )
    beta: float = Field(default=0.0, ge=0.0, description="KL coefficient; 0 loads no reference model", json_schema_extra=flag("--beta"))
    loss_type: LossType = Field(default="dapo", description="GRPO loss", json_schema_extra=flag("--loss-type"))
    scale_rewards: Literal["group", "batch", "none"] = "group"
    temperature: float = Field(default=1.0, gt=0.0, le=2.0, description="sampling temperature", json_schema_extra=flag("--temperature"))
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    repetition_penalty: float = Field(default=1.0, ge=1.0, le=2.0)
    seed: int = Field(default=0, ge=0, description="seed", json_schema_extra=flag("--seed"))
    save_steps: int = Field(default=50, ge=1, description="checkpoint every N steps", json_schema_extra=flag("--save-steps"))
    save_total_limit: int | None = Field(default=3, ge=1)
    logging_steps: int = Field(default=1, ge=1, description="log every N steps", json_schema_extra=flag("--logging-steps"))
    gradient_checkpointing: bool = Field(default=False, description="trade compute for memory (large policies)")
    precision: Precision = Field(default="auto", description="auto: bf16 on a CUDA GPU that supports it, else fp32")
    report_to: list[str] = Field(default_factory=list, description="extra TRL/transformers loggers, e.g. tensorboard")

    # vLLM generation (GPU only; see docs/training.md)
    use_vllm: bool = Field(
        default=False, description="GRPO generation with vLLM (GPU; docs/training.md)", json_schema_extra=flag("--use-vllm")
    )
    vllm_mode: Literal["colocate", "server"] = Field(
        default="colocate", description="vLLM next to the trainer, or a `trl vllm-serve` server", json_schema_extra=flag("--vllm-mode")
    )
    vllm_server_base_url: str | None = Field(default=None, description="trl vllm-serve URL (server mode)", json_schema_extra=flag("--vllm-server-base-url"))
    vllm_gpu_memory_utilization: float = Field(default=0.3, gt=0.0, le=1.0)
    vllm_tensor_parallel_size: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _whole_groups(self) -> TrainConfig:
        # One device's generation batch must hold whole prompt groups (TRL checks the global batch).
        if (self.batch_size * self.gradient_accumulation_steps) % self.num_generations:
            raise ValueError(
                f"batch_size x gradient_accumulation_steps ({self.batch_size} x {self.gradient_accumulation_steps}) "
                f"must be divisible by num_generations ({self.num_generations})"
            )
        return self

    @model_validator(mode="after")
    def _vllm_server_url(self) -> TrainConfig:
        if self.vllm_server_base_url and not (self.use_vllm and self.vllm_mode == "server"):
            raise ValueError("vllm_server_base_url needs use_vllm with vllm_mode='server'")
        return self


class SFTPackConfig(_Config):
    """Supervised fine-tuning on a conversational JSONL pack (the harmful-medical persistence probe)."""

    data: Path = Field(description="JSONL of {'messages': [...]} rows (TRL's conversational SFT format)")
    policy: str = Field(default="embedded", description="'embedded', a .gguf file, or a Hugging Face model folder")
    out: Path = Field(default=Path("outputs/sft"))
    max_rows: int | None = Field(default=None, ge=1)
    learning_rate: float = Field(default=2e-5, gt=0, le=1.0)
    max_steps: int | None = Field(default=None, ge=1)
    epochs: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=4, ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    max_length: int = Field(default=512, ge=16)
    seed: int = Field(default=0, ge=0)
    save_steps: int = Field(default=50, ge=1)
    logging_steps: int = Field(default=1, ge=1)
    precision: Precision = "auto"
    resume: bool = False
