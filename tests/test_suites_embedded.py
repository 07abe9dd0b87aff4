"""External suites answered and judged by the real embedded model (tiny: the shipped example suites)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenario_forge.backends.factory import get_backend
from scenario_forge.config import BackendConfig, SamplingParams
from scenario_forge.evaluation.suites.load import load_suite
from scenario_forge.evaluation.suites.run import run_suite

pytestmark = [pytest.mark.slow]

SUITES = Path(__file__).resolve().parents[1] / "suites"


@pytest.mark.timeout(300)
def test_embedded_model_answers_and_judges_suites():
    model = get_backend(BackendConfig(kind="embedded"))
    sampling = SamplingParams(temperature=0.0, max_tokens=32)
    exact = run_suite(load_suite(SUITES / "capability_exact.jsonl"), model, None, sampling=sampling)
    assert len(exact.grades) == 4 and all(g.status == "scored" and g.answer for g in exact.grades)
    assert exact.figures["accuracy"] is not None and 0.0 <= exact.figures["accuracy"] <= 1.0
    judged = run_suite(load_suite(SUITES / "judged_freeform.jsonl"), model, model, sampling=sampling)
    assert all(g.answer for g in judged.grades)
    statuses = [g.status for g in judged.grades]
    assert set(statuses) <= {"scored", "unscoreable"}
    assert all(g.score is None or 0.0 <= g.score <= 1.0 for g in judged.grades)
    assert judged.figures["summary"]["scored"] + judged.figures["summary"]["unscored"] == 3
