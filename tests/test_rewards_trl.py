"""A TRL user's GRPO run on a published ``trl`` config, scored by ``scenario_forge.rewards.trl_reward``
and nothing else of ours: the dataset is loaded with ``datasets`` from the published folder, the
trainer is TRL's own ``GRPOTrainer`` (a tiny random Llama on CPU, one step), the judge of the rubric
rows is named by ``SCENARIO_FORGE_JUDGE`` (a fake judge served under that name)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_mixture import tiny_policy, write_mixture

from scenario_forge.backends.base import ChatRequest
from scenario_forge.backends.factory import use_backend
from scenario_forge.backends.fake import FakeBackend
from scenario_forge.config import BackendConfig
from scenario_forge.publishing import PublishConfig, run_publish

pytestmark = [pytest.mark.slow]


def grades(r: ChatRequest) -> str:
    criterion = r.messages[-1].content.split("Criterion: ", 1)[1].split("\n", 1)[0]
    return "YES" if "pharmacist" in criterion or "retracts" in criterion else "NO"


@pytest.mark.timeout(300)
def test_grpo_step_from_the_published_trl_config(tmp_path: Path, monkeypatch):
    import trl
    from datasets import load_dataset

    # what the publisher did
    mixture = write_mixture(tmp_path / "mix", persistence=False)
    hub = run_publish(PublishConfig(source=mixture, local=tmp_path / "hub", exports=["trl"])).folder
    policy = tiny_policy(tmp_path / "policy")

    # what a TRL user does
    from scenario_forge.rewards import trl_reward

    monkeypatch.setenv("SCENARIO_FORGE_JUDGE", "fake:judge")
    train = load_dataset(str(hub), "trl", split="train")
    rows = [i for i, t in enumerate(train["reward_type"]) if t == "rubric"][:1] + [
        i for i, t in enumerate(train["reward_type"]) if t == "exact_match"][:1]
    train = train.select(rows)  # one rubric row, one exact-match row
    args = trl.GRPOConfig(
        output_dir=str(tmp_path / "out"), max_steps=1, per_device_train_batch_size=4, num_generations=2,
        max_completion_length=6, learning_rate=1e-3, logging_steps=1, report_to="none", save_strategy="no",
        use_cpu=True, bf16=False, seed=0, dataloader_num_workers=0,
    )
    trainer = trl.GRPOTrainer(model=str(policy), reward_funcs=[trl_reward], args=args, train_dataset=train)
    with use_backend(BackendConfig(kind="fake", model="judge"), FakeBackend(grades)) as judge:
        trainer.train()

    assert trainer.state.global_step == 1
    assert any(r.id.startswith("grade:") for r in judge.requests)  # the rubric row went to the judge
    step = next(h for h in trainer.state.log_history if "loss" in h)
    # 2 rows x 2 generations, every one scored (trl_reward's own per-step metrics, through TRL's log_metric)
    assert step["rewards/unscoreable_count"] == 0.0 and step["rewards/unscoreable_frac"] == 0.0
    assert "rewards/source/beneficial" in step and "rewards/source/standard" in step
    assert step["rewards/trl_reward/mean"] == step["rewards/trl_reward/mean"]  # not NaN


@pytest.mark.timeout(300)
def test_default_judge_is_the_embedded_model(monkeypatch):
    """With no judge named, rubric rows are graded by the real embedded model (and something is scored)."""
    from tiny_mixture import beneficial_rows

    from scenario_forge import rewards
    from scenario_forge.rewards import RewardConfig, rewards_for, trl_reward
    from scenario_forge.training.dataset import row_record

    for name in (rewards.ENV_JUDGE, rewards.ENV_JUDGE_BASE_URL, rewards.ENV_REWARD_RANGE):
        monkeypatch.delenv(name, raising=False)
    records = [row_record(r) for r in beneficial_rows("train")[:2]]
    answers = [
        "I could not find that trial either, so I retract the claim: it may not exist. Search PubMed for curcumin and Crohn's.",
        "Taking 1600 mg at once is above the usual single dose. Please ask a pharmacist or doctor first.",
    ]
    got = trl_reward(
        [[{"role": "assistant", "content": a}] for a in answers],
        prompts=[r["prompt"] for r in records],
        **{k: [r[k] for r in records] for k in ("reward_type", "rubric", "answer", "id", "source", "trait")},
    )
    assert rewards_for(RewardConfig.from_env()).grader().backend.kind == "embedded"
    assert len(got) == 2 and any(r is not None for r in got), got
