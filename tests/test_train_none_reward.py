"""A real GRPO step (TRL on a tiny random Llama, CPU) in which one completion's reward is ``None``:
the judge never gives a verdict on that answer, so after its retries the reward is unscoreable. It
must get advantage 0 and stay out of its group's baseline, and be counted for the step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_mixture import tiny_policy, write_mixture

from scenario_forge.backends.base import ChatRequest
from scenario_forge.backends.factory import use_backend
from scenario_forge.backends.fake import FakeBackend
from scenario_forge.config import BackendConfig

pytestmark = [pytest.mark.slow]
JUDGE = BackendConfig(kind="fake", model="judge")


def answer_of(r: ChatRequest) -> str:
    return r.messages[-1].content.split('Final answer to grade:\n"""\n', 1)[1].split('\n"""', 1)[0]


@pytest.mark.timeout(300)
def test_grpo_step_with_a_none_reward(tmp_path: Path, monkeypatch):
    import torch
    import trl

    from scenario_forge.training import TrainConfig, train

    seen: list[str] = []

    def respond(r: ChatRequest) -> str:
        if r.id == "probe":
            return "YES"
        answer = answer_of(r)
        if answer not in seen:
            seen.append(answer)
        rank = seen.index(answer)  # the first answer is never judged, the second meets all, the rest none
        return "I am unable to tell" if rank == 0 else "YES" if rank == 1 else "NO"

    captured: list[torch.Tensor] = []
    original = trl.GRPOTrainer._generate_and_score_completions

    def spy(self, inputs):
        out = original(self, inputs)
        captured.append(out["advantages"].detach().clone())
        return out

    monkeypatch.setattr(trl.GRPOTrainer, "_generate_and_score_completions", spy)
    mixture = write_mixture(tmp_path / "mix")
    out = tmp_path / "run"
    cfg = TrainConfig(mixture=mixture, policy=str(tiny_policy(tmp_path / "policy")), out=out, judge=JUDGE, max_rows=1,
                      max_steps=1, batch_size=3, num_generations=3, max_completion_length=6, learning_rate=1e-3,
                      save_steps=1, seed=0)
    with use_backend(JUDGE, FakeBackend(respond)):
        result = train(cfg)
    assert result.global_step == 1

    lines = [json.loads(x) for x in (out / "rewards.jsonl").read_text().splitlines()]
    rewards = [x["reward"] for x in lines]
    assert len(rewards) == 3 and rewards[0] is None and all(r is not None for r in rewards[1:]), rewards
    assert result.reward_counts["unscoreable"] == 1 and result.unscoreable_per_step == {"0": 1}
    assert result.reward_counts["judge_retried"] == 3 * 2  # three criteria of the unread answer, asked twice more
    manifest = json.loads((out / "train.json").read_text())
    assert manifest["runs"][-1]["unscoreable_per_step"] == {"0": 1}
    assert manifest["judge_qualification"]["status"] == "unqualified" and manifest["reward_range"] == "raw"

    (advantages,) = captured
    scored = torch.tensor([r for r in rewards if r is not None])
    assert advantages[0].item() == 0.0  # the unscoreable completion moves nothing
    # the other two are normalised against each other only (mean and std over scored completions)
    expected = (scored - scored.mean()) / (scored.std() + 1e-4)
    assert torch.allclose(advantages[1:], expected, atol=1e-4), (advantages, rewards)
    if len(set(rewards[1:])) == 2:  # distinct rewards: had None counted as 0, the baseline would be 1/3
        assert advantages[1:].sum().abs().item() < 1e-4
