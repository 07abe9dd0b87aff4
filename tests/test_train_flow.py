"""The Prefect ``train-eval`` flow chains the training and evaluation stage functions."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from tiny_mixture import tiny_policy, write_mixture

from scenario_forge.backends.factory import use_backend
from scenario_forge.backends.fake import FakeBackend
from scenario_forge.config import BackendConfig

JUDGE = BackendConfig(kind="fake", model="judge")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_train_eval_flow(tmp_path: Path):
    from prefect.testing.utilities import prefect_test_harness

    from flows.train_eval import train_eval_flow
    from scenario_forge.evaluation import EvalConfig
    from scenario_forge.training import TrainConfig

    policy = tiny_policy(tmp_path / "policy")
    mixture = write_mixture(tmp_path / "mix")
    cfg = TrainConfig(mixture=mixture, policy=str(policy), out=tmp_path / "run", judge=JUDGE, max_steps=2,
                      batch_size=4, num_generations=2, max_completion_length=6, learning_rate=1e-3)
    judge = FakeBackend(lambda r: random.Random(r.messages[-1].content).choice(["YES", "NO"]))
    with use_backend(JUDGE, judge), prefect_test_harness(server_startup_timeout=90):
        # a tiny random model never stops on its own: short answers keep this test fast
        evaluate = EvalConfig(mixture=mixture, judge=JUDGE, out=tmp_path / "run" / "eval", max_rows=2,
                              answer_sampling={"max_tokens": 8}, model_label="trained", baseline_label="start")
        result = train_eval_flow(cfg, evaluate)
    assert result.train.global_step == 2
    report = Path(result.eval.files["json"])
    assert report == tmp_path / "run" / "eval" / "eval.json"
    meta = json.loads(report.read_text())["meta"]
    # the trained model against the policy it started from, both through transformers
    # (a model folder is named by its name and a digest of its config and weights)
    assert meta["models"]["trained"].startswith("transformers:final@sha256:")
    assert meta["models"]["start"].startswith(f"transformers:{policy.name}@sha256:")
    assert meta["models"]["trained"] != meta["models"]["start"]
    figures = result.eval.figures
    assert set(figures["models"]) == {"trained", "start"} and figures["comparison"]["tally"]["evals"] > 0
