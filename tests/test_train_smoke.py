"""CPU smoke test of the real thing: GRPO on the embedded SmolLM2-135M policy, rewards from the real
rubric grader on the embedded judge, on a tiny mixture (4 rubric rows + 4 exact-match rows)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_mixture import beneficial_rows, standard_rows, write_mixture

from scenario_forge.backends.factory import get_backend
from scenario_forge.config import BackendConfig
from scenario_forge.grading import GradeItem, RubricGrader
from scenario_forge.records import Message

pytestmark = [pytest.mark.slow]

JUDGE = BackendConfig(kind="embedded", parallel_sequences=8)


@pytest.mark.timeout(480)
def test_grpo_smoke_on_the_embedded_policy_with_the_real_grader(tmp_path: Path):
    from safetensors.torch import load_file

    from scenario_forge.training import TrainConfig, train
    from scenario_forge.training.policy import resolve_policy

    mixture = write_mixture(tmp_path / "mix")
    out = tmp_path / "run"
    cfg = TrainConfig(
        mixture=mixture, policy="embedded", out=out, judge=JUDGE, max_steps=5, batch_size=4, num_generations=2,
        max_completion_length=32, learning_rate=1e-5, save_steps=5, seed=0,
    )
    result = train(cfg)
    assert result.global_step == 5

    lines = [json.loads(x) for x in (out / "rewards.jsonl").read_text().splitlines()]
    assert len(lines) == 5 * 4 == result.reward_counts["completions"]
    rubric = [x for x in lines if x["reward_type"] == "rubric"]
    assert rubric, "five steps of two prompts from eight rows always include a rubric row"
    # The grader was called once per criterion of every rubric completion ...
    rubrics = {r.id: r for r in beneficial_rows("train")}
    assert result.reward_counts["judge_requests"] == sum(len(rubrics[x["id"]].rubric) for x in rubric) + result.reward_counts.get("judge_retried", 0)
    # ... and the logged rewards are what the rubric grader gives those completions (recomputed).
    grader = RubricGrader(get_backend(JUDGE))
    items = [GradeItem(conversation=rubrics[x["id"]].prompt, answer=x["completion"], rubric=rubrics[x["id"]].rubric) for x in rubric]
    recomputed = [g.score for g in grader.grade(items)]
    same = sum(a == b or (a is not None and b is not None and abs(a - b) < 1e-9) for a, b in zip(recomputed, [x["reward"] for x in rubric]))
    assert same >= 0.8 * len(rubric), (recomputed, [x["reward"] for x in rubric])
    # unscoreable rubric rewards are None in the log (never 0) and counted
    assert result.reward_counts.get("rubric_unscoreable", 0) == sum(x["reward"] is None for x in rubric)
    # exact-match rewards are the mixer's exact match on the logged completion
    from scenario_forge.grading.exact_match import exact_match_reward

    answers = {r.id: r.answer for r in standard_rows("train")}
    for x in lines:
        if x["reward_type"] == "exact_match":
            assert x["reward"] == exact_match_reward(x["completion"], answers[x["id"]])

    # Training log: TRL's metrics with our per-source / per-trait means.
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    keys = set().union(*log)
    assert {"loss", "reward", "rewards/routed_reward/mean"} <= keys
    assert any(k.startswith("rewards/source/") for k in keys) and any(k.startswith(("rewards/trait/", "rewards/task/")) for k in keys)

    # The weights moved.
    start = load_file(str(resolve_policy("embedded") / "model.safetensors"))
    end = load_file(str(out / "final" / "model.safetensors"))
    changed = [k for k in start if k in end and not (start[k] == end[k]).all()]
    assert changed, "no weight changed in 5 GRPO steps"
    assert (out / "checkpoint-5" / "trainer_state.json").is_file()


def test_prompt_shape_the_policy_sees():
    """The policy answers the scenario's conversation as given (a pre-filled flawed turn included)."""
    row = beneficial_rows("train")[0]
    assert [m.role for m in row.prompt] == ["user", "assistant", "user"]
    assert isinstance(row.prompt[0], Message)
