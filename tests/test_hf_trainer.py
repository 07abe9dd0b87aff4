"""What GRPO and SFT hand to TRL the same way (training/hf_trainer.py): shared arguments, precision,
and the train_log.jsonl callback. Needs the [train] extra (transformers) for the callback."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from scenario_forge.training.config import SFTPackConfig, TrainConfig
from scenario_forge.training.hf_trainer import common_args, jsonl_log_callback, use_bf16


def test_both_trainers_share_the_same_argument_mapping(tmp_path: Path) -> None:
    grpo = TrainConfig(mixture=tmp_path, learning_rate=3e-6, max_steps=7, batch_size=16, num_generations=8, seed=5,
                       save_steps=3, logging_steps=2, precision="fp32")
    sft = SFTPackConfig(data=tmp_path / "p.jsonl", learning_rate=3e-6, max_steps=7, batch_size=16, seed=5, save_steps=3,
                        logging_steps=2, precision="fp32")
    a, b = common_args(grpo, tmp_path / "o", "GRPO"), common_args(sft, tmp_path / "o", "SFT")
    assert a == b
    assert (a["output_dir"], a["max_steps"], a["per_device_train_batch_size"], a["seed"], a["data_seed"]) == (
        str(tmp_path / "o"), 7, 16, 5, 5)
    assert (a["bf16"], a["fp16"], a["model_init_kwargs"]) == (False, False, {"dtype": "float32"})
    assert common_args(TrainConfig(mixture=tmp_path, precision="bf16"), tmp_path, "GRPO")["model_init_kwargs"] == {
        "dtype": "bfloat16"}
    assert common_args(SFTPackConfig(data=tmp_path), tmp_path, "SFT")["max_steps"] == -1  # epochs decide


def test_precision_rule() -> None:
    assert use_bf16("bf16", "x") is True and use_bf16("fp32", "x") is False
    torch = pytest.importorskip("torch")
    assert use_bf16("auto", "x") == bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def test_log_callback_appends_json_lines_from_the_main_process_only(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from transformers import TrainerCallback

    path = tmp_path / "train_log.jsonl"
    callback = jsonl_log_callback(path, "GRPO training")
    assert isinstance(callback, TrainerCallback)
    callback.on_log(None, SimpleNamespace(is_world_process_zero=True, global_step=3), None, logs={"loss": 0.5})
    callback.on_log(None, SimpleNamespace(is_world_process_zero=False, global_step=4), None, logs={"loss": 0.1})
    callback.on_log(None, SimpleNamespace(is_world_process_zero=True, global_step=5), None, logs={})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"step": 3, "loss": 0.5}]
