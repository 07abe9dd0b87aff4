"""``generate --estimate N``: a pilot on the real backend predicts a run's tokens, requests and
server-seconds; the cost block of the manifest (per stage, per kept scenario)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import fake_config
from openai_fake_server import free_port
from typer.testing import CliRunner

from scenario_forge.cli.main import app
from scenario_forge.generation.estimate import pilot_estimate
from scenario_forge.generation.run import run_generate_direct
from scenario_forge.manifest import cost_markdown, run_cost

pytestmark = pytest.mark.timeout(180)


def test_pilot_predicts_a_second_run_within_15_percent(tmp_path: Path):
    """The issue's accuracy check: a pilot of 8 predicts run B (40 scenarios, another seed); run B
    happens; predicted and actual tokens and requests agree within 15%."""
    target = fake_config(tmp_path / "b", n=40, seed=7, domains=["health", "law"], shard_size=10)
    pilot = pilot_estimate(target.model_copy(update={"seed": 3}), target=40, pilot_n=8, folder=tmp_path / "pilot")
    assert pilot.pilot_planned == 8 and pilot.pilot_kept > 0
    assert set(pilot.predicted) == set(pilot.pilot) and "total" in pilot.predicted
    actual = run_generate_direct(target)
    real = actual.cost["total"]
    for field in ("prompt_tokens", "completion_tokens", "requests"):
        predicted = pilot.predicted["total"][field]
        assert abs(predicted - real[field]) / real[field] <= 0.15, (field, predicted, real[field])
    assert pilot.predicted["total"]["server_s"] > 0
    assert not any((tmp_path / "b" / "out").glob("*pilot*"))  # the pilot wrote only under its folder


def test_manifest_cost_per_stage_and_per_kept_scenario(tmp_path: Path):
    manifest = run_generate_direct(fake_config(tmp_path, n=6))
    cost, usage, kept = manifest.cost, manifest.usage, manifest.counts.kept
    assert set(cost) == {*usage, "total"} and cost["total"]["kept"] == kept > 0
    for stage, u in usage.items():
        assert cost[stage]["requests"] == u["requests"] and u["server_s"] > 0
        assert cost[stage]["tokens_per_kept"] == pytest.approx((u["prompt_tokens"] + u["completion_tokens"]) / kept, rel=1e-3)
    assert cost["total"]["tokens"] == sum(u["prompt_tokens"] + u["completion_tokens"] for u in usage.values())
    # server-seconds never exceed the generation's wall time (one backend, one server, shares of its busy time)
    assert cost["total"]["server_s"] <= manifest.timings["generation_wall_s"] + 1e-6
    table = "\n".join(cost_markdown(cost))
    assert "## Cost" in table and "| **total** |" in table and f"{kept} kept" in table
    assert "tokens_per_kept" not in run_cost({"brief": {"requests": 1}}, kept=0)["total"]  # nothing kept: no per-kept figures


def test_estimate_cli_prints_the_prediction_and_leaves_nothing(tmp_path: Path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["generate", "--backend", "fake", "--domain", "health", "--no-curate", "--out", str(out),
                                      "--estimate", "1000", "--pilot-n", "4"])
    assert result.exit_code == 0, result.output
    assert "predicted for 1,000 planned scenarios" in result.output and "per kept scenario" in result.output
    assert not out.exists()  # the pilot ran in a temporary folder


def test_estimate_against_an_unreachable_server_is_one_line(tmp_path: Path):
    out = tmp_path / "out"
    dead = f"http://127.0.0.1:{free_port()}/v1"
    result = CliRunner().invoke(app, ["generate", "--backend", "openai", "--base-url", dead, "--model", "m", "--out", str(out),
                                      "--estimate", "1000"])
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert result.exit_code != 0 and len(errors) == 1 and "cannot reach" in errors[0], result.output
    assert not out.exists()
    bad = CliRunner().invoke(app, ["generate", "--backend", "fake", "--out", str(out), "--estimate", "0"])
    assert bad.exit_code != 0 and "--estimate and --pilot-n must be at least 1" in bad.output
