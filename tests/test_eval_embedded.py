"""``scenario-forge eval`` end to end with the real embedded model answering and judging (tiny N)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_mixture import write_mixture
from typer.testing import CliRunner

from scenario_forge.cli.main import app
from scenario_forge.evaluation.records import read_grades

pytestmark = [pytest.mark.slow]


@pytest.mark.timeout(300)
def test_eval_with_the_embedded_model_and_judge(tmp_path: Path):
    mixture = write_mixture(tmp_path / "mix")
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, ["eval", "--model", "embedded", "--mixture", str(mixture), "--max-rows", "2",
                                      "--max-tokens", "48", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "model: mean" in result.output and "report:" in result.output
    grades = read_grades(out / "grades.parquet")
    # heldout (2 rows) + three persistence splits (2 each)
    assert len(grades) == 8 and all(g.answer for g in grades)
    for g in grades:
        assert g.status in ("scored", "unscoreable")
        assert (g.score is None) == (g.status == "unscoreable")
        assert g.score is None or 0.0 <= g.score <= 1.0
        assert g.criteria == 3 and 0 <= g.unscoreable_criteria <= 3
        assert g.refused in (True, False)
    saved = json.loads((out / "eval.json").read_text())
    overall = saved["figures"]["models"]["model"]["overall"]
    assert overall["n"] == 8 and overall["scored"] + overall["unscored"] == 8
    assert overall["unscoreable"] == sum(g.status == "unscoreable" for g in grades)
    assert saved["meta"]["models"]["model"].startswith("embedded:SmolLM2-135M-Instruct")
    assert saved["meta"]["judge"].startswith("embedded:")
    assert saved["figures"]["models"]["model"]["persistence"]["drop"]["n_pairs"] <= 2
    assert (out / "plots" / "persistence.png").is_file() and (out / "eval.md").read_text().startswith("# Evaluation: model")
