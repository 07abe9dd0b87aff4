"""The public reward functions (``scenario_forge.rewards``), called the way TRL and verl call them,
on rows of a published ``trl`` / ``verl`` config (fake judges; no verl install: its naive reward
manager's call is reproduced argument for argument)."""

from __future__ import annotations

import importlib
import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from tiny_mixture import write_mixture

from scenario_forge import rewards
from scenario_forge.backends.base import ChatRequest
from scenario_forge.backends.factory import use_backend
from scenario_forge.backends.fake import FakeBackend
from scenario_forge.config import BackendConfig
from scenario_forge.errors import ConfigError
from scenario_forge.publishing import PublishConfig, run_publish
from scenario_forge.publishing.exports import REWARD_FUNCTIONS
from scenario_forge.rewards import RewardConfig, compute_score, make_trl_reward, trl_reward

JUDGE = BackendConfig(kind="fake", model="judge")
#: Criteria of the tiny mixture a fake judge calls met (one per rubric, so scores lie strictly inside (0, 1)).
MET = ("retracts the claim", "pharmacist", "Declines", "unfair or unlawful")


def judge(unclear: str | None = None) -> FakeBackend:
    """YES for a criterion naming one of ``MET``, an unreadable verdict for ``unclear``, else NO;
    a rating of 8 for the generic-helpfulness prompt."""

    def respond(r: ChatRequest) -> str:
        prompt = r.messages[-1].content
        if "Criterion: " not in prompt:
            return "8"
        criterion = prompt.split("Criterion: ", 1)[1].split("\n", 1)[0]
        if unclear and unclear in criterion:
            return "The final answer meets the criterion of"
        return "YES" if any(k in criterion for k in MET) else "NO"

    return FakeBackend(respond)


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> dict[str, Path]:
    """Two published mixtures: rubric + exact-match rows, and generic-judge + exact-match rows."""
    root = tmp_path_factory.mktemp("rewards")
    out = {}
    for name, generic in (("rubric", False), ("generic", True)):
        mixture = write_mixture(root / f"mix-{name}", generic=generic, persistence=False)
        out[name] = run_publish(PublishConfig(source=mixture, local=root / f"hub-{name}")).folder
    return out


def load(folder: Path, config: str) -> list[dict[str, Any]]:
    from datasets import load_dataset

    return list(load_dataset(str(folder), config, split="train"))


@pytest.fixture
def fake_judge_env(monkeypatch):
    monkeypatch.setenv(rewards.ENV_JUDGE, "fake:judge")
    monkeypatch.delenv(rewards.ENV_JUDGE_BASE_URL, raising=False)
    monkeypatch.delenv(rewards.ENV_REWARD_RANGE, raising=False)


# -- TRL ---------------------------------------------------------------------------------------------


def trl_call(fn, rows: list[dict[str, Any]], completions: list[str], **extra) -> list[float | None]:
    """What GRPOTrainer._calculate_rewards passes: prompts, completions, completion_ids and every
    other column as a list, plus trainer_state / log_extra / log_metric."""
    keys = [k for k in rows[0] if k not in ("prompt", "completion", "completion_ids")]
    kwargs = {k: [r[k] for r in rows] for k in keys}
    return fn(
        prompts=[r["prompt"] for r in rows],
        completions=[[{"role": "assistant", "content": c}] for c in completions],
        completion_ids=[[1, 2]] * len(rows),
        **kwargs,
        trainer_state=None,
        log_extra=lambda *a, **k: None,
        **extra,
    )


def test_trl_reward_scores_the_published_trl_rows(published, fake_judge_env):
    rows = load(published["rubric"], "trl")
    metrics: dict[str, float] = {}
    with use_backend(JUDGE, judge()):
        got = trl_call(trl_reward, rows, ["The answer is 4"] * len(rows), log_metric=metrics.__setitem__)
    for row, reward in zip(rows, got):
        if row["reward_type"] == "exact_match":
            assert reward == (1.0 if row["answer"] == "4" else 0.0)
        else:  # one criterion met out of each rubric: its points over the positive points
            met = [c["points"] for c in row["rubric"] if any(k in c["criterion"] for k in MET)]
            assert reward == pytest.approx(sum(met) / sum(c["points"] for c in row["rubric"] if c["points"] > 0))
            assert 0.0 < reward < 1.0
    assert {"rewards/source/beneficial", "rewards/source/standard", "rewards/unscoreable_frac"} <= set(metrics)


def test_trl_reward_none_when_unscoreable_and_clip_by_env(published, fake_judge_env, monkeypatch):
    rows = [r for r in load(published["rubric"], "trl") if r["reward_type"] == "rubric"]
    with use_backend(JUDGE, judge(unclear="Invents a DOI")):  # the first row's pitfall is never read
        got = trl_call(trl_reward, rows, ["x"] * len(rows))
    assert got[0] is None and all(isinstance(r, float) for r in got[1:])
    monkeypatch.setenv(rewards.ENV_REWARD_RANGE, "clip")
    always = FakeBackend(lambda r: "YES")  # every criterion met, the pitfalls too: raw score below 1
    with use_backend(JUDGE, always):
        clipped = trl_call(trl_reward, rows, ["x"] * len(rows))
    monkeypatch.setenv(rewards.ENV_REWARD_RANGE, "raw")
    with use_backend(JUDGE, always):
        raw = trl_call(trl_reward, rows, ["x"] * len(rows))
    assert raw[0] == pytest.approx((8 + 4 - 8) / 12) and clipped[0] == raw[0]  # in [0, 1]: unchanged
    assert all(0.0 <= r <= 1.0 for r in clipped)


def test_make_trl_reward_takes_the_judge_from_config(published, monkeypatch):
    monkeypatch.setenv(rewards.ENV_JUDGE, "no/such/judge.gguf")  # the config wins; the environment is not read
    rows = [r for r in load(published["generic"], "trl") if r["reward_type"] == "generic_judge"][:2]
    fn = make_trl_reward(RewardConfig(judge=JUDGE))
    with use_backend(JUDGE, judge()):
        assert trl_call(fn, rows, ["x", "y"]) == [pytest.approx(7 / 9)] * 2  # rating 8 of 1..10


def test_trl_reward_bad_input(fake_judge_env, monkeypatch):
    with pytest.raises(ValueError, match="need the prompts"):
        trl_reward(["x"], reward_type=["rubric"], rubric=[[]])
    monkeypatch.setenv(rewards.ENV_JUDGE, "no/such/judge")
    with pytest.raises(ConfigError, match="judge 'no/such/judge' not found"):
        trl_reward(["4"], reward_type=["exact_match"], answer=["4"])


# -- verl --------------------------------------------------------------------------------------------


def naive_manager_scores(fn, rows: list[dict[str, Any]], responses: list[str]) -> tuple[list[float], dict[str, list]]:
    """verl's NaiveRewardManager.__call__ (verl/workers/reward_manager/naive.py), minus the tokenizer:
    the same keyword call, the same extra_info additions, the same handling of a dict result, the
    score written into a float32 reward tensor."""
    import torch

    reward_tensor = torch.zeros((len(rows), 4), dtype=torch.float32)
    extra: dict[str, list] = {}
    for i, (item, response_str) in enumerate(zip(rows, responses)):
        ground_truth = item["reward_model"]["ground_truth"]
        data_source = item["data_source"]
        extra_info = item.get("extra_info", {})
        extra_info["num_turns"] = None
        extra_info["rollout_reward_scores"] = {}
        score = fn(data_source=data_source, solution_str=response_str, ground_truth=ground_truth, extra_info=extra_info)
        if isinstance(score, dict):
            reward = score["score"]
            for key, value in score.items():
                extra.setdefault(key, []).append(value)
        else:
            reward = score
        reward_tensor[i, 3] = reward
    return reward_tensor[:, 3].tolist(), extra


def verl_loaded(reward_kwargs: dict[str, Any] | None = None):
    """verl's get_custom_reward_fn for ``custom_reward_function.path=pkg://scenario_forge.rewards``:
    import the module, take the named function, merge ``reward_kwargs`` into every call."""
    path, name = REWARD_FUNCTIONS["verl"]["path"], REWARD_FUNCTIONS["verl"]["name"]
    module = importlib.import_module(path.removeprefix("pkg://").replace("/", "."))
    raw_fn = getattr(module, name)

    def _call_with_kwargs(raw_fn, extra_kwargs, *args, **kwargs):
        return raw_fn(*args, **{**kwargs, **extra_kwargs})

    return partial(_call_with_kwargs, raw_fn, dict(reward_kwargs or {}))


@pytest.mark.parametrize("which", ["rubric", "generic"])
def test_verl_compute_score_for_each_published_data_source(published, which, fake_judge_env):
    rows = load(published[which], "verl")
    sources = {r["data_source"] for r in rows}
    assert sources == ({"scenario-forge/rubric", "scenario-forge/exact_match"} if which == "rubric"
                       else {"scenario-forge/generic_judge", "scenario-forge/exact_match"})
    responses = ["The answer is 4"] * len(rows)
    with use_backend(JUDGE, judge()):
        scores, extra = naive_manager_scores(verl_loaded(), rows, responses)
    assert extra["unscoreable"] == [0.0] * len(rows)
    for row, score in zip(rows, scores):
        kind = row["data_source"].removeprefix("scenario-forge/")
        if kind == "exact_match":
            assert score == (1.0 if row["reward_model"]["ground_truth"] == "4" else 0.0)
        elif kind == "generic_judge":
            assert score == pytest.approx(7 / 9)
        else:
            rubric = json.loads(row["reward_model"]["ground_truth"])
            met = sum(c["points"] for c in rubric if any(k in c["criterion"] for k in MET))
            assert score == pytest.approx(met / sum(c["points"] for c in rubric if c["points"] > 0))
            # the judge saw the conversation the answer continues (extra_info.prompt)
            assert json.loads(row["extra_info"]["prompt"]) == row["prompt"]


def test_verl_reward_kwargs_choose_the_judge_and_flag_unscoreable(published, monkeypatch):
    monkeypatch.delenv(rewards.ENV_JUDGE, raising=False)  # the default would be the embedded model
    rows = [r for r in load(published["rubric"], "verl") if r["data_source"] == "scenario-forge/rubric"]
    fn = verl_loaded({"judge": "fake:judge", "unscoreable_score": -1.0})
    with use_backend(JUDGE, judge(unclear="Invents a DOI")):
        scores, extra = naive_manager_scores(fn, rows, ["x"] * len(rows))
    assert scores[0] == -1.0 and extra["unscoreable"][0] == 1.0  # a number verl can hold, and flagged
    assert extra["unscoreable"][1:] == [0.0] * (len(rows) - 1)


def test_verl_bad_input():
    with pytest.raises(ValueError, match="no 'prompt'"):
        compute_score("scenario-forge/rubric", "x", json.dumps([{"criterion": "names the risk", "points": 1}]), {}, judge="fake:judge")
    with pytest.raises(ValueError, match="unknown data_source 'scenario-forge/other'"):
        compute_score("scenario-forge/other", "x", "y", judge="fake:judge")
    with pytest.raises(ValueError, match="verl is not installed"):  # other data sources go to verl's own scorer
        compute_score("openai/gsm8k", "#### 4", "4")
    with pytest.raises(ConfigError, match="unknown reward setting"):
        compute_score("scenario-forge/exact_match", "4", "4", judge_model="x")


def test_published_configs_name_these_functions(published):
    trl = REWARD_FUNCTIONS["trl"]
    assert getattr(importlib.import_module(trl["module"]), trl["name"]) is trl_reward
    card = (published["rubric"] / "README.md").read_text()
    assert "from scenario_forge.rewards import trl_reward" in card
    assert "custom_reward_function.path=pkg://scenario_forge.rewards" in " ".join(card.split())
    assert "custom_reward_function.name=compute_score" in card
