"""``scenario-forge train``: bad input is one line and a non-zero exit and loses nothing; resume works.

Training here uses a tiny random Llama (``tiny_policy``) and a fake judge: seconds, not minutes.
The real-model GRPO run is ``test_train_smoke.py``.
"""

from __future__ import annotations

import json
import random
import socket
from pathlib import Path

import pytest
from tiny_mixture import tiny_policy, write_mixture
from typer.testing import CliRunner

from scenario_forge.backends.base import ChatRequest
from scenario_forge.backends.factory import use_backend
from scenario_forge.backends.fake import FakeBackend
from scenario_forge.cli.main import app
from scenario_forge.config import BackendConfig

runner = CliRunner()
JUDGE = BackendConfig(kind="fake", model="judge")
FAKE_JUDGE = ["--judge-backend", "fake", "--judge-model", "judge"]
TINY = ["--batch-size", "4", "--num-generations", "2", "--max-completion-length", "6", "--learning-rate", "1e-3"]


def run(*args: str):
    return runner.invoke(app, list(args))


def one_error_line(result) -> str:
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and result.exit_code != 0, result.output
    return errors[0]


@pytest.fixture(scope="module")
def policy(tmp_path_factory) -> Path:
    return tiny_policy(tmp_path_factory.mktemp("policy") / "tiny")


@pytest.fixture
def mixture(tmp_path: Path) -> Path:
    return write_mixture(tmp_path / "mix")


@pytest.fixture
def judge():
    def respond(r: ChatRequest) -> str:
        return random.Random(r.messages[-1].content).choice(["YES", "NO"])

    backend = FakeBackend(respond)
    with use_backend(JUDGE, backend):
        yield backend


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_not_a_mixture_folder(tmp_path: Path, policy: Path):
    result = run("train", "--mixture", str(tmp_path), "--policy", str(policy), "--out", str(tmp_path / "o"))
    assert "is not a mixture folder" in one_error_line(result)
    result = run("train", "--mixture", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert "mixture folder not found" in one_error_line(result)
    assert not (tmp_path / "o").exists()


def test_policy_that_is_not_a_causal_lm(tmp_path: Path, mixture: Path):
    from transformers import BertConfig

    bert = tmp_path / "bert"
    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32).save_pretrained(bert)
    result = run("train", "--mixture", str(mixture), "--policy", str(bert), "--out", str(tmp_path / "o"))
    assert "is a bert model, not a causal language model" in one_error_line(result)
    for bad, needle in [(tmp_path / "missing", "not found: give 'embedded'"), (mixture / "mixture.json", "not a .gguf model"),
                        (tmp_path, "no config.json")]:
        assert needle in one_error_line(run("train", "--mixture", str(mixture), "--policy", str(bad), "--out", str(tmp_path / "o")))


def test_unreachable_judge(tmp_path: Path, mixture: Path, policy: Path):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    result = run("train", "--mixture", str(mixture), "--policy", str(policy), "--out", str(tmp_path / "o"),
                 "--judge-backend", "openai", "--judge-model", "judge", "--judge-base-url", url)
    line = one_error_line(result)
    assert line.startswith("error: judge backend") and "127.0.0.1" in line
    assert result.exit_code == 3  # BackendError


def test_bad_knobs_name_the_problem(tmp_path: Path, mixture: Path):
    result = run("train", "--mixture", str(mixture), "--out", str(tmp_path / "o"), "--batch-size", "3", "--num-generations", "2")
    assert "must be divisible by num_generations" in one_error_line(result)
    result = run("train", "--mixture", str(mixture), "--out", str(tmp_path / "o"), "--num-generations", "1")
    assert "--num-generations: Input should be greater than or equal to 2" in one_error_line(result)
    result = run("train", "--mixture", str(mixture), "--vllm-server-base-url", "http://x:8000")
    assert "vllm_server_base_url needs use_vllm" in one_error_line(result)
    result = run("train", "--sft", "harmful_medical_sft", "--mixture", str(mixture))
    assert "--mixture applies to GRPO only" in one_error_line(result)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_train_resume_and_refusing_to_overwrite(tmp_path: Path, mixture: Path, policy: Path, judge: FakeBackend):
    out = tmp_path / "run"
    base = ["train", "--mixture", str(mixture), "--policy", str(policy), "--out", str(out), *FAKE_JUDGE, *TINY]
    first = run(*base, "--max-steps", "2", "--save-steps", "1")
    assert first.exit_code == 0, first.output
    assert "trained 2 steps on 8 rows" in first.output
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    assert (out / "final" / "model.safetensors").is_file() and (out / "final" / "tokenizer.json").is_file()
    assert judge.calls > 0
    manifest = json.loads((out / "train.json").read_text())
    assert manifest["status"] == "finished" and manifest["global_step"] == 2 and manifest["judge"] == "fake:judge"
    assert manifest["mixture"]["reward_types"] == {"rubric": 4, "exact_match": 4}
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert any("rewards/source/beneficial" in x or "rewards/source/standard" in x for x in log)
    steps_logged = {json.loads(x)["step"] for x in (out / "rewards.jsonl").read_text().splitlines()}
    assert steps_logged == {0, 1}

    # Without --resume an existing run is never overwritten.
    before = {p: p.read_bytes() for p in (out / "final").iterdir()}
    again = run(*base, "--max-steps", "2")
    assert "already holds a training run" in one_error_line(again)
    assert {p: p.read_bytes() for p in (out / "final").iterdir()} == before

    # --resume continues from checkpoint-2 up to step 3.
    resumed = run(*base, "--max-steps", "3", "--save-steps", "1", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "(resumed from checkpoint-2)" in resumed.output and "trained 3 steps" in resumed.output
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    manifest = json.loads((out / "train.json").read_text())
    assert [r["resumed_from"] for r in manifest["runs"]] == [None, "checkpoint-2"]
    steps_logged = [json.loads(x)["step"] for x in (out / "rewards.jsonl").read_text().splitlines()]
    assert sorted(set(steps_logged)) == [0, 1, 2]  # only the new step was generated again

    # Resuming with another mixture is refused.
    other = write_mixture(tmp_path / "other")
    changed = run("train", "--mixture", str(other), "--policy", str(policy), "--out", str(out), *FAKE_JUDGE, *TINY,
                  "--max-steps", "4", "--resume")
    assert "mixture differ from the run" in one_error_line(changed)


def test_resume_needs_a_checkpoint(tmp_path: Path, mixture: Path, policy: Path, judge: FakeBackend):
    result = run("train", "--mixture", str(mixture), "--policy", str(policy), "--out", str(tmp_path / "empty"),
                 *FAKE_JUDGE, "--resume")
    assert "no finished checkpoint" in one_error_line(result)
