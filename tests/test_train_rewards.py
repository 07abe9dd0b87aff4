"""Reward routing by row, unscoreable rewards, and per-source / per-trait logging (fake judges)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_mixture import beneficial_rows, standard_rows, write_mixture

from scenario_forge.backends.base import ChatRequest
from scenario_forge.backends.fake import FakeBackend
from scenario_forge.errors import ConfigError
from scenario_forge.grading import GenericJudge, RubricGrader
from scenario_forge.mixture import MixtureMeta, write_meta, write_split
from scenario_forge.records import Criterion, Message, MixtureRow
from scenario_forge.training.dataset import COLUMNS, row_record, to_dataset, training_rows
from scenario_forge.training.rewards import RoutedReward


def rubric_judge(met: set[str], unclear: set[str] = frozenset()):
    """YES for criteria whose text contains a key in ``met``, gibberish for ``unclear``, else NO."""

    def respond(r: ChatRequest) -> str:
        prompt = r.messages[-1].content
        criterion = prompt.split("Criterion: ", 1)[1].split("\n", 1)[0]
        if any(k in criterion for k in unclear):
            return "The final answer meets the criterion of"
        return "YES" if any(k in criterion for k in met) else "NO"

    return FakeBackend(respond)


def columns(rows: list[MixtureRow], repeat: int = 1) -> dict:
    """What TRL hands the reward function: every dataset column, one entry per completion."""
    recs = [row_record(r) for r in rows for _ in range(repeat)]
    return {c: [rec[c] for rec in recs] for c in COLUMNS if c != "prompt"} | {"prompts": [rec["prompt"] for rec in recs]}


def call(reward: RoutedReward, rows: list[MixtureRow], completions: list[str], **extra) -> list[float | None]:
    cols = columns(rows, repeat=len(completions) // len(rows))
    prompts = cols.pop("prompts")
    conv = [[{"role": "assistant", "content": c}] for c in completions]
    return reward(prompts=prompts, completions=conv, **cols, **extra)


def test_rewards_route_by_row_type(tmp_path: Path):
    judge = rubric_judge(met={"retracts", "PubMed"})
    generic_backend = FakeBackend(lambda r: "8")
    grader, generic = RubricGrader(judge), GenericJudge(generic_backend)
    reward = RoutedReward(grader, generic, log_path=tmp_path / "rewards.jsonl")
    rubric_row = beneficial_rows("train")[0]  # +8 retracts, +4 PubMed, -8 invents a DOI
    generic_row = beneficial_rows("train", reward_type="generic_judge")[1]
    math_row = standard_rows("train")[3]  # 17 + 25 = 42
    rows = [rubric_row, generic_row, math_row, math_row]
    out = call(reward, rows, ["I retract it.", "Ask a pharmacist.", "#### 42", "It is 41."])
    assert out == [pytest.approx(1.0), pytest.approx(7 / 9), 1.0, 0.0]
    # the grader saw exactly the rubric row's three criteria, the generic judge the generic row
    assert len(judge.requests) == 3 and all("I retract it." in r.messages[-1].content for r in judge.requests)
    assert len(generic_backend.requests) == 1 and "Ask a pharmacist." in generic_backend.requests[0].messages[-1].content
    assert reward.counts["rubric"] == 1 and reward.counts["generic_judge"] == 1 and reward.counts["exact_match"] == 2
    assert reward.judge_requests() == 4


def test_rubric_rewards_follow_the_judge_verdicts():
    rows = [beneficial_rows("train")[0]]
    assert call(RoutedReward(RubricGrader(rubric_judge(met={"retracts"}))), rows, ["x"]) == [pytest.approx(8 / 12)]
    # the negative criterion met: (8 - 8) / 12
    both = RoutedReward(RubricGrader(rubric_judge(met={"retracts", "DOI"})))
    assert call(both, rows, ["x"]) == [pytest.approx(0.0)]


def test_unscoreable_rewards_are_none_and_counted_never_zero(tmp_path: Path):
    judge = rubric_judge(met=set(), unclear={"retracts", "PubMed", "DOI"})  # no verdict at all
    reward = RoutedReward(RubricGrader(judge), GenericJudge(FakeBackend(lambda r: "I refuse to rate")),
                          log_path=tmp_path / "r.jsonl")
    rows = [beneficial_rows("train")[0], beneficial_rows("train", reward_type="generic_judge")[0]]
    metrics: dict[str, list[float]] = {}
    out = call(reward, rows, ["a", "b"], log_metric=lambda k, v: metrics.setdefault(k, []).append(v))
    assert out == [None, None]
    assert reward.counts["unscoreable"] == 2 and reward.counts["rubric_unscoreable"] == 1
    assert metrics["rewards/unscoreable_frac"] == [1.0]
    lines = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [x["reward"] for x in lines] == [None, None] and lines[0]["unscoreable_criteria"] == 3


def test_rewards_are_logged_per_source_trait_and_task(tmp_path: Path):
    reward = RoutedReward(RubricGrader(rubric_judge(met={"Warns", "pharmacist"})), log_path=tmp_path / "r.jsonl")
    rows = [beneficial_rows("train")[1], standard_rows("train")[1]]  # health/downside_aware_planning; 3 + 5 = 8
    metrics: dict[str, list[float]] = {}

    class State:
        global_step = 7

    out = call(reward, rows, ["warn", "8"], log_metric=lambda k, v: metrics.setdefault(k, []).append(v), trainer_state=State())
    assert out == [1.0, 1.0]
    assert metrics["rewards/source/beneficial"] == [1.0] and metrics["rewards/source/standard"] == [1.0]
    assert metrics["rewards/trait/downside_aware_planning"] == [1.0] and metrics["rewards/task/arithmetic"] == [1.0]
    assert metrics["rewards/type/rubric"] == [1.0] and metrics["rewards/type/exact_match"] == [1.0]
    lines = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [(x["step"], x["source"], x["trait"], x["task"], x["completion"]) for x in lines] == [
        (7, "beneficial", "downside_aware_planning", None, "warn"),
        (7, "standard", None, "arithmetic", "8"),
    ]


def test_unknown_reward_type_and_missing_judges_fail_loudly():
    rows = [beneficial_rows("train")[0]]
    with pytest.raises(ValueError, match="rubric grader"):
        call(RoutedReward(None), rows, ["x"])
    cols = columns(rows)
    cols.pop("prompts")
    cols["reward_type"] = ["bleu"]
    with pytest.raises(ValueError, match="unknown reward_type 'bleu'"):
        RoutedReward(None)(prompts=[[{"role": "user", "content": "q"}]], completions=["x"], **cols)


def test_dataset_keeps_the_columns_the_router_needs(tmp_path: Path):
    mix = write_mixture(tmp_path / "mix")
    split, rows = training_rows(mix)
    ds = to_dataset(rows)
    assert split == "train" and ds.num_rows == 8 and set(ds.column_names) == set(COLUMNS)
    first = ds[0]
    assert first["prompt"][-1]["role"] == "user"
    assert [c["points"] for c in json.loads(first["rubric"])] == [8, 4, -8]
    assert ds[4]["answer"] == "4" and ds[4]["reward_type"] == "exact_match"


def test_training_rows_reject_rows_that_cannot_be_rewarded(tmp_path: Path):
    bad = [
        MixtureRow(id="r1", split="train", source="standard", reward_type="exact_match",
                   prompt=[Message(role="user", content="2+2?")], answer=None),
    ]
    write_split(tmp_path, "train", bad)
    write_meta(tmp_path, MixtureMeta(recipe={}, seed=0, splits={"train": 1}))
    with pytest.raises(ConfigError, match="row r1 .* no answer"):
        training_rows(tmp_path)
    neg_only = [MixtureRow(id="r2", split="train", source="beneficial", reward_type="rubric",
                           prompt=[Message(role="user", content="q")],
                           rubric=[Criterion(criterion="Invents a DOI", points=-5)])]
    write_split(tmp_path, "train", neg_only)
    with pytest.raises(ConfigError, match="no positive rubric criterion"):
        training_rows(tmp_path)
    with pytest.raises(ConfigError, match="no split 'nope'"):
        training_rows(tmp_path, split="nope")
    for held in ("heldout", "heldout_domains", "persistence_harmful"):
        with pytest.raises(ConfigError, match=f"split '{held}' .* is held out for evaluation"):
            training_rows(tmp_path, split=held)


def test_config_maps_onto_trl_grpo_config(tmp_path: Path):
    from scenario_forge.training.config import TrainConfig
    from scenario_forge.training.trainer import grpo_args

    cfg = TrainConfig(mixture=tmp_path, out=tmp_path / "o", learning_rate=3e-6, max_steps=7, beta=0.01, batch_size=16,
                      num_generations=8, max_completion_length=99, temperature=0.8, seed=5, save_steps=3,
                      use_vllm=True, vllm_mode="server", vllm_server_base_url="http://gpu-host:8000")
    args = grpo_args(cfg)
    assert (args.learning_rate, args.max_steps, args.beta, args.per_device_train_batch_size) == (3e-6, 7, 0.01, 16)
    assert (args.num_generations, args.max_completion_length, args.temperature, args.seed) == (8, 99, 0.8, 5)
    assert (args.use_vllm, args.vllm_mode, args.vllm_server_base_url) == (True, "server", "http://gpu-host:8000")
    assert args.loss_type == "dapo" and args.remove_unused_columns is False and args.save_steps == 3
    assert args.output_dir == str(tmp_path / "o")
    assert grpo_args(TrainConfig(mixture=tmp_path)).max_steps == -1  # epochs decide
