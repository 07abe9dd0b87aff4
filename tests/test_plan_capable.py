"""``generate --plan-only`` on the capable path: the requests it counts are the ones a run sends."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from helpers import FAKE
from typer.testing import CliRunner

from scenario_forge.cli.main import app
from scenario_forge.cli.summary import planned_requests
from scenario_forge.config import GenerateConfig
from scenario_forge.generation import estimate
from scenario_forge.generation.run import run_generate_direct
from scenario_forge.planning import plan_selection


def test_capable_plan_counts_cells_ideation_calls_turns_and_rubrics(tmp_path: Path):
    cfg = GenerateConfig(
        out=tmp_path / "out", backend=FAKE, n=30, domains=["health", "law"], traits=["truthfulness", "corrigibility"],
        curate=False, path="capable", shard_size=8, capable={"ideas_per_call": 3},
    )
    p = estimate.estimate_run(cfg)
    seeds = plan_selection(cfg.selection, 30, cfg.seed)
    cells = [(s.domain, s.trait) for s in seeds]
    calls = 0
    for first in range(0, 30, 8):  # per shard, per cell: one call for every 3 seeds
        shard = cells[first : first + 8]
        calls += sum(-(-shard.count(c) // 3) for c in set(shard))
    turns = sum(s.user_turns for s in seeds)
    assert p.capable["understanding"].requests == len(set(cells)) == 4
    assert p.capable["ideation"].requests == calls
    assert p.capable["user_turn"].requests == turns and p.capable["assistant_turn"].requests == turns - 30
    assert p.capable["rubric"].requests == 30
    assert p.capable["ideation"].completion_tokens == calls * cfg.capable.sampling.ideation.max_tokens
    assert all(e.prompt_tokens > 0 for e in p.capable.values())
    assert planned_requests(cfg, structured=True, path="capable") == sum(e.requests for e in p.capable.values())
    assert planned_requests(cfg, structured=True, path="short") != planned_requests(cfg, structured=True, path="capable")


def test_capable_plan_matches_a_fake_run(tmp_path: Path, monkeypatch):
    """The fake backend answers every capable request validly the first time: the run sends the
    plan's understanding and ideation requests, and one request per turn and one rubric for every
    scenario that reached the rollout, within the plan's token bounds."""
    from test_capable import bag_of_words

    monkeypatch.setattr("scenario_forge.generation.run.idea_embedder", lambda config: bag_of_words)  # not MiniLM: fast
    cfg = GenerateConfig(out=tmp_path / "out", backend=FAKE, n=20, curate=False, path="capable", shard_size=8)
    p = estimate.estimate_run(cfg)
    manifest = run_generate_direct(cfg)
    used = manifest.usage
    assert all(used[s]["reasks"] == 0 for s in used)
    assert used["understanding"]["requests"] == p.capable["understanding"].requests
    assert used["ideation"]["requests"] == p.capable["ideation"].requests
    files = list((tmp_path / "out").glob("*/rejects.parquet"))
    rejects = [r for f in files for r in pq.read_table(f).to_pylist()]
    before_rollout = {r["id"] for r in rejects if r["stage"] in ("understanding", "ideation")}
    rolled = [s for s in plan_selection(cfg.selection, 20, cfg.seed) if s.id not in before_rollout]
    assert used["rollout"]["requests"] == sum(2 * s.user_turns - 1 for s in rolled)
    assert used["rubric"]["requests"] == len(rolled)
    for stage, kinds in (("understanding", ["understanding"]), ("ideation", ["ideation"]),
                         ("rollout", ["user_turn", "assistant_turn"]), ("rubric", ["rubric"])):
        assert used[stage]["prompt_tokens"] <= sum(p.capable[k].prompt_tokens for k in kinds)
        assert used[stage]["completion_tokens"] <= sum(p.capable[k].completion_tokens for k in kinds)


def test_plan_only_prints_the_capable_table(tmp_path: Path):
    result = CliRunner().invoke(app, ["generate", "--plan-only", "--backend", "fake", "--path", "capable", "--n", "6",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "capable path" in result.output and "understanding" in result.output and "ideation" in result.output
    assert not (tmp_path / "out").exists()
