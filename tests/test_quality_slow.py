"""The embedded default model end to end with per-turn re-asks, lint and the quality figures:
tiny N, the real SmolLM2-135M generator and the packaged MiniLM embedder (judge off to keep it short)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scenario_forge.cli.main import app
from scenario_forge.lint import lint_scenario
from scenario_forge.schema import read_scenarios

pytestmark = [pytest.mark.slow]
runner = CliRunner()


@pytest.mark.timeout(1200)
def test_embedded_run_keeps_lint_clean_scenarios_and_reports_quality(tmp_path: Path):
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["generate", "--domain", "health", "--n", "4", "--orchestrator", "direct", "--no-judge",
         "--out", str(out), "--run-id", "slow-quality", "--parallel", "8"],
    )
    run = out / "slow-quality"
    manifest = json.loads((run / "manifest.json").read_text())
    kept = read_scenarios(run / "scenarios.parquet")
    assert len(kept) >= 1, result.output
    for s in kept:  # lint is curation's first gate: whatever is kept is lint-clean
        assert lint_scenario(s.id, s.messages, s.rubric, flaw=s.flaw, flawed_turn_index=s.flawed_turn_index, shape=s.shape).usable
    q = manifest["quality"]
    assert q["planned"] == 4 and q["kept"] == len(kept) and q["lint"]["checked"] >= len(kept)
    assert q["lint"]["kept_pass_rate"] == 1.0
    assert 0.0 <= q["rubric_specificity"]["rate"] <= 1.0
    assert q["diversity"]["embedding_model"] and "reasks" in manifest["usage"]["dialogue"]
    if len(kept) >= 2:
        assert -1.0 <= q["diversity"]["mean_pairwise_cosine"] <= 1.0
    v = q["verdict"]
    assert isinstance(v["training_ready"], bool) and v["because"]
    text = " ".join(result.output.split())
    assert "training-ready: " in text and "quality: lint pass" in text
