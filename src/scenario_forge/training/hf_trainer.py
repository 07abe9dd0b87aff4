"""What both trainers (GRPO in :mod:`.trainer`, SFT in :mod:`.sft`) hand to TRL: the arguments they
share, the precision rule, and the callback that writes ``train_log.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from ._extra import require


class TrainerSettings(Protocol):
    """The config fields every TRL run reads (:class:`~.config.TrainConfig`, :class:`~.config.SFTPackConfig`)."""

    @property
    def learning_rate(self) -> float: ...
    @property
    def max_steps(self) -> int | None: ...
    @property
    def epochs(self) -> float: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def gradient_accumulation_steps(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def save_steps(self) -> int: ...
    @property
    def logging_steps(self) -> int: ...
    @property
    def precision(self) -> str: ...


def use_bf16(precision: str, what: str) -> bool:
    """``bf16``: asked for, or ``auto`` on a CUDA GPU that supports it (else fp32)."""
    if precision == "bf16":
        return True
    if precision != "auto":
        return False
    torch = require("torch", what)
    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def common_args(config: TrainerSettings, out: Path, what: str) -> dict[str, Any]:
    """The TRL config arguments both trainers set the same way (our names -> TRL's)."""
    bf16 = use_bf16(config.precision, what)
    return {
        "output_dir": str(out),
        "learning_rate": config.learning_rate,
        "max_steps": config.max_steps or -1,
        "num_train_epochs": config.epochs,
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "seed": config.seed,
        "data_seed": config.seed,
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "logging_steps": config.logging_steps,
        "bf16": bf16,
        "fp16": False,
        "model_init_kwargs": {"dtype": "bfloat16" if bf16 else "float32"},
        "dataloader_num_workers": 0,
    }


def jsonl_log_callback(path: Path, what: str) -> Any:
    """A ``transformers.TrainerCallback`` appending every TRL log line (with its step) to ``path``."""
    transformers = require("transformers", what)

    def on_log(self: Any, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
        if logs and state.is_world_process_zero:
            with path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"step": state.global_step, **logs}, default=float) + "\n")

    callback = type("JsonlLog", (transformers.TrainerCallback,), {"on_log": on_log, "__doc__": jsonl_log_callback.__doc__})
    return callback()
