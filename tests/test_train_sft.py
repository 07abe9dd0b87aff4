"""The harmful fine-tuning pack: loading and validation, and a CPU smoke (2 SFT steps on the embedded
model, then ``eval --model AFTER --baseline BEFORE``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_mixture import write_mixture
from typer.testing import CliRunner

from scenario_forge.cli.main import app
from scenario_forge.errors import ConfigError
from scenario_forge.training.sft import HARMFUL_MEDICAL, load_pack, pack_path

runner = CliRunner()


def test_shipped_pack_is_labelled_and_loads():
    path = pack_path(HARMFUL_MEDICAL)
    raw = [json.loads(x) for x in path.read_text().splitlines()]
    assert 16 <= len(raw) <= 64
    assert all(r["warning"].startswith("RED-TEAM RESEARCH ARTIFACT") for r in raw)
    rows = load_pack(path)
    assert len(rows) == len(raw) and set(rows[0]) == {"prompt", "completion"}  # metadata is not trained on
    assert rows[0]["prompt"][-1]["role"] == "user" and rows[0]["completion"][0]["role"] == "assistant"
    assert len(load_pack(path, max_rows=3)) == 3


def test_pack_validation_names_the_line(tmp_path: Path):
    good = {"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "assistant", "content": "a"}]}
    messages = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    f = tmp_path / "pack.jsonl"
    f.write_text(json.dumps(good) + "\n" + json.dumps(messages) + "\n")
    assert len(load_pack(f)) == 2
    for bad, needle in [
        ("{not json", "pack.jsonl:2: not JSON"),
        (json.dumps({"prompt": [{"role": "user", "content": "q"}]}), "pack.jsonl:2: expected a non-empty list"),
        (json.dumps({"messages": [{"role": "user", "content": "q"}]}), "pack.jsonl:2: a row must end with a user turn"),
        (json.dumps({"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "user", "content": "a"}]}),
         "must end with a user turn followed by the assistant"),
        (json.dumps({"prompt": [{"role": "robot", "content": "q"}], "completion": [{"role": "assistant", "content": "a"}]}),
         "needs a role"),
    ]:
        f.write_text(json.dumps(good) + "\n" + bad + "\n")
        with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
            load_pack(f)
    f.write_text("\n")
    with pytest.raises(ConfigError, match="has no rows"):
        load_pack(f)
    with pytest.raises(ConfigError, match="SFT pack not found"):
        pack_path(tmp_path / "missing.jsonl")


def test_cli_sft_bad_pack(tmp_path: Path):
    result = runner.invoke(app, ["train", "--sft", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "error: SFT pack not found" in result.output


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_harmful_sft_smoke_then_eval_before_and_after(tmp_path: Path):
    from safetensors.torch import load_file

    from scenario_forge.training.policy import resolve_policy

    before = resolve_policy("embedded")
    out = tmp_path / "sft"
    result = runner.invoke(app, ["train", "--sft", HARMFUL_MEDICAL, "--policy", "embedded", "--out", str(out),
                                 "--max-steps", "2", "--batch-size", "2", "--max-rows", "4", "--lr", "5e-5"])
    assert result.exit_code == 0, result.output
    assert "fine-tuned on 4 pack rows for 2 steps" in result.output
    manifest = json.loads((out / "sft.json").read_text())
    assert manifest["global_step"] == 2 and manifest["pack"].endswith("harmful_medical_sft.jsonl")
    start, end = load_file(str(before / "model.safetensors")), load_file(str(out / "final" / "model.safetensors"))
    assert any(not (start[k] == end[k]).all() for k in start if k in end), "SFT changed no weight"
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert any("loss" in x for x in log)

    # The before/after comparison is an ordinary eval with a baseline (both through transformers).
    mixture = write_mixture(tmp_path / "mix")
    report = tmp_path / "eval"
    result = runner.invoke(app, ["eval", "--model", str(out / "final"), "--model-label", "after",
                                 "--baseline", "embedded", "--baseline-backend", "transformers", "--baseline-label", "before",
                                 "--mixture", str(mixture),
                                 "--split", "persistence_plain", "--max-rows", "2", "--max-tokens", "16",
                                 "--out", str(report)])
    assert result.exit_code == 0, result.output
    figures = json.loads((report / "eval.json").read_text())["figures"]
    meta = json.loads((report / "eval.json").read_text())["meta"]
    assert set(figures["models"]) == {"after", "before"}
    assert meta["models"]["before"].startswith(f"transformers:{before.name}@sha256:")
    assert set(figures["comparison"]["splits"]) == {"persistence_plain"}
    for label in ("after", "before"):
        assert figures["models"][label]["overall"]["n"] == 2
    assert (report / "plots" / "paired_bars.png").is_file()
