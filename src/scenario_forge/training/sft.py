"""Supervised fine-tuning on a small conversational pack: the paper's harmful fine-tuning probe.

The paper fine-tuned a baseline and a trait-trained model on bad medical advice and compared how
much each lost (HealthBench, misalignment, alignment questions). ``packs/harmful_medical_sft.jsonl``
is a small hand-written red-team pack of wrong/unsafe medical answers for that; any pack in TRL's
conversational SFT shapes works. :func:`finetune_pack` runs TRL's ``SFTTrainer`` (loss on the
completion only) and writes ``OUT/final``; ``scenario-forge eval --model OUT/final --baseline
BEFORE`` then measures what the fine-tune did.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..errors import ConfigError
from ..resources import resource_dir
from ..atomic import atomic_write_text
from ._extra import require
from .config import SFTPackConfig
from .policy import resolve_policy
from .hf_trainer import common_args, jsonl_log_callback
from .trainer import FINAL, last_checkpoint

HARMFUL_MEDICAL = "harmful_medical_sft"
MANIFEST = "sft.json"
TRAIN_LOG = "train_log.jsonl"


class SFTResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    out: Path
    final_model: Path
    global_step: int
    rows: int
    wall_s: float


def pack_path(ref: str | Path) -> Path:
    """A pack file: an existing path, or the name of a shipped pack (``harmful_medical_sft``)."""
    path = Path(ref).expanduser()
    if path.is_file():
        return path
    if "/" not in str(ref):
        try:
            shipped = resource_dir("packs") / f"{Path(str(ref)).stem}.jsonl"
        except FileNotFoundError:
            shipped = None
        if shipped is not None and shipped.is_file():
            return shipped
    raise ConfigError(f"SFT pack not found: {ref} (a JSONL file, or a shipped pack such as {HARMFUL_MEDICAL})")


def _msgs(value: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: expected a non-empty list of messages")
    out = []
    for m in value:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") or not isinstance(m.get("content"), str):
            raise ConfigError(f"{where}: each message needs a role (system/user/assistant) and text content")
        out.append({"role": m["role"], "content": m["content"]})
    return out


def load_pack(path: Path, max_rows: int | None = None) -> list[dict[str, list[dict[str, str]]]]:
    """``[{"prompt": [...], "completion": [...]}]`` from a JSONL pack; one-line errors name the line.

    Rows may be prompt-completion (``prompt`` + ``completion``) or ``messages`` (the last message
    must be the assistant's: it becomes the completion). Other fields (``id``, ``warning``) are
    dropped here.
    """
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{where}: not JSON ({exc.msg})") from None
            if not isinstance(data, dict):
                raise ConfigError(f"{where}: expected a JSON object")
            if "messages" in data:
                messages = _msgs(data["messages"], where)
                prompt, completion = messages[:-1], messages[-1:]
            else:
                prompt, completion = _msgs(data.get("prompt"), where), _msgs(data.get("completion"), where)
            if completion[-1]["role"] != "assistant" or not prompt or prompt[-1]["role"] != "user":
                raise ConfigError(f"{where}: a row must end with a user turn followed by the assistant's completion")
            rows.append({"prompt": prompt, "completion": completion})
            if max_rows is not None and len(rows) >= max_rows:
                break
    if not rows:
        raise ConfigError(f"SFT pack {path} has no rows")
    return rows


def finetune_pack(config: SFTPackConfig) -> SFTResult:
    """Fine-tune ``config.policy`` on the pack; checkpoints, a log and ``final/`` land in ``config.out``."""
    start = time.perf_counter()
    path = pack_path(config.data)
    rows = load_pack(path, config.max_rows)
    out = config.out
    checkpoint = last_checkpoint(out) if out.is_dir() else None
    if config.resume and checkpoint is None:
        raise ConfigError(f"--resume: no finished checkpoint in {out} to continue from")
    if not config.resume and (checkpoint is not None or (out / FINAL).exists()):
        raise ConfigError(f"{out} already holds a fine-tuning run; pass --resume or choose another --out")
    policy = resolve_policy(config.policy)
    trl = require("trl", "SFT fine-tuning")
    from datasets import Dataset

    args = trl.SFTConfig(
        **common_args(config, out, "SFT fine-tuning"),
        max_length=config.max_length,
        gradient_checkpointing=False,
        completion_only_loss=True,
        report_to="none",
    )
    out.mkdir(parents=True, exist_ok=True)
    trainer = trl.SFTTrainer(
        model=str(policy),
        args=args,
        train_dataset=Dataset.from_list(rows),
        callbacks=[jsonl_log_callback(out / TRAIN_LOG, "SFT fine-tuning")],
    )
    trainer.train(resume_from_checkpoint=str(checkpoint) if config.resume and checkpoint else None)
    final = out / FINAL
    trainer.save_model(str(final))
    if trainer.processing_class is not None:
        trainer.processing_class.save_pretrained(str(final))
    result = SFTResult(
        out=out, final_model=final, global_step=int(trainer.state.global_step), rows=len(rows),
        wall_s=round(time.perf_counter() - start, 2),
    )
    manifest = {
        "config": config.model_dump(mode="json"),
        "pack": str(path),
        "policy": {"spec": config.policy, "folder": str(policy)},
        "rows": len(rows),
        "global_step": result.global_step,
        "final_model": str(final),
        "wall_s": result.wall_s,
    }
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2, default=str))
    return result
