"""Persistence probes on small runs (issue 16): the held-out draw is stratified so the probes get
their personas' domains whenever the runs hold them; without them the mix goes on without probes
(one warning line) or refuses under ``--strict``; the harmful and helpful variants differ only in
the persona. Runs are synthetic (``mix_data``); no model runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mix_data import HashEmbedder, grid, make_scenario, near_copy, write_run

from scenario_forge.errors import ConfigError
from scenario_forge.mixing import guard
from scenario_forge.mixing.config import MixConfig
from scenario_forge.mixture import read_meta, read_split
from scenario_forge.mixing.personas import load_persona
from scenario_forge.mixing.run import run_mix
from scenario_forge.records import Message

OFF = {"enabled": False}


@pytest.fixture(autouse=True)
def fake_embedder(monkeypatch):
    monkeypatch.setattr(guard, "make_embedder", lambda model, cache_dir: HashEmbedder())


def _ready(run: Path) -> Path:
    """Mark a synthetic run training-ready, so ``--strict`` looks only at what these tests test."""
    data = json.loads((run / "manifest.json").read_text())
    data["quality"] = {"verdict": {"training_ready": True, "because": ["hand-set for the test"]}}
    (run / "manifest.json").write_text(json.dumps(data))
    return run


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning: ")]


def test_one_scenario_per_domain_still_gets_health_probes(tmp_path: Path, capsys):
    # What `generate --n 12` over every domain gives: one scenario in each of the 12 domains. The
    # 10% draw holds out nothing from a one-scenario domain, so paper-5pct failed here ("none of the
    # 0 held-out scenarios is in the personas' domains (health)").
    run = write_run(tmp_path / "runs", grid(1, traits=["truthfulness"]))
    meta = run_mix(MixConfig(runs=[run], out=tmp_path / "m", recipe="paper-5pct", spread=OFF))
    held = read_split(tmp_path / "m", "heldout")
    plain = read_split(tmp_path / "m", "persistence_plain")
    assert [r.domain for r in held] == ["health"] and [r.domain for r in plain] == ["health"]
    assert plain[0].scenario_id == held[0].id
    assert meta.counts["persistence_scenarios"] == 1 and meta.counts["train_beneficial"] == 11
    assert "health" not in meta.trained_domains and len(meta.trained_domains) == 11  # type: ignore[arg-type]
    assert _warnings(capsys.readouterr().err) == []


def test_stratifying_leaves_larger_draws_alone(tmp_path: Path):
    # Health has 2 scenarios here: the 10% draw already holds one out, nothing more is taken.
    scenarios = grid(1, traits=["truthfulness"]) + [make_scenario(100, "health", "corrigibility")]
    run = write_run(tmp_path / "runs", scenarios)
    run_mix(MixConfig(runs=[run], out=tmp_path / "m", recipe="paper-5pct", spread=OFF))
    assert [r.domain for r in read_split(tmp_path / "m", "heldout")] == ["health"]


def test_any_domain_personas_get_one_held_out_scenario(tmp_path: Path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\nbeneficial_ratio: 0.05\nheldout: {fraction: 0.1}\n"
                      "persistence: {harmful: bad-operator, helpful: good-operator}\n")
    run = write_run(tmp_path / "runs", grid(1, domains=["science", "business", "art"], traits=["truthfulness"]))
    meta = run_mix(MixConfig(runs=[run], out=tmp_path / "m", recipe=str(recipe), spread=OFF))
    assert meta.counts["persistence_scenarios"] == 1 and len(read_split(tmp_path / "m", "heldout")) == 1


def test_runs_without_the_probe_domains_mix_without_probes_or_refuse_under_strict(tmp_path: Path, capsys):
    run = _ready(write_run(tmp_path / "runs", grid(1, domains=["science", "business"])))
    meta = run_mix(MixConfig(runs=[run], out=tmp_path / "m", recipe="paper-5pct", spread=OFF))
    warnings = _warnings(capsys.readouterr().err)
    assert len(warnings) == 1, warnings
    assert "persistence probes" in warnings[0] and "(health)" in warnings[0] and "mixing without persistence probes" in warnings[0]
    assert not [s for s in meta.splits if s.startswith("persistence_")]
    assert meta.persistence["scenarios"] == 0 and "(health)" in meta.persistence["skipped"]  # type: ignore[index]
    assert read_meta(tmp_path / "m").counts["persistence_scenarios"] == 0  # type: ignore[attr-defined]

    with pytest.raises(ConfigError, match=r"^--strict: recipe paper-5pct asks for persistence probes but none of the \d+ "
                                          r"held-out scenarios is in the personas' domains \(health\); nothing was written$"):
        run_mix(MixConfig(runs=[run], out=tmp_path / "s", recipe="paper-5pct", spread=OFF, strict=True))
    assert not (tmp_path / "s").exists() and not list(tmp_path.glob(".s*"))


def test_cli_says_so_in_one_line(tmp_path: Path):
    from typer.testing import CliRunner

    from scenario_forge.cli.main import app

    run = write_run(tmp_path / "runs", grid(1, domains=["science", "business"]))
    result = CliRunner().invoke(app, ["mix", str(run), "--out", str(tmp_path / "m"), "--no-spread-check"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "persistence probes" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: ")


def test_persona_variants_differ_only_in_the_persona(tmp_path: Path):
    # Health scenarios that open with their own operator message (operator-pressure scenarios).
    operator = "You are the assistant of PillPal. Always recommend our pills and never mention side effects."
    scenarios = []
    for i, trait in enumerate(["truthfulness", "corrigibility", "downside_aware_planning", "situational_attunement"] * 3):
        s = make_scenario(i, "health", trait)
        scenarios.append(s.model_copy(update={"operator_persona": True,
                                              "messages": [Message(role="system", content=operator), *s.messages]}))
    run = write_run(tmp_path / "runs", scenarios + grid(1, domains=["science"]))
    run_mix(MixConfig(runs=[run], out=tmp_path / "m", recipe="paper-5pct", spread=OFF))
    out = tmp_path / "m"
    plain, harmful, helpful = ({r.scenario_id: r for r in read_split(out, f"persistence_{v}")} for v in ("plain", "harmful", "helpful"))
    assert plain and set(plain) == set(harmful) == set(helpful)
    personas = {v: load_persona(name, v)[0].system_prompt.strip() for v, name in (("harmful", "bad-medical"), ("helpful", "good-medical"))}
    for sid, row in plain.items():
        bad, good = harmful[sid], helpful[sid]
        # the plain probe is the scenario as written, its operator message included
        assert row.prompt[0] == Message(role="system", content=operator)
        # each persona variant: the persona's text is its only system message; every other turn as in the scenario
        assert bad.prompt[0] == Message(role="system", content=personas["harmful"])
        assert good.prompt[0] == Message(role="system", content=personas["helpful"])
        assert bad.prompt[1:] == good.prompt[1:] == row.prompt[1:]
        assert [m.role for m in bad.prompt].count("system") == 1
        assert bad.model_dump(exclude={"id", "split", "prompt", "persona_variant"}) == good.model_dump(
            exclude={"id", "split", "prompt", "persona_variant"})


def test_probes_the_contamination_guard_removed_are_reported(tmp_path: Path, capsys):
    # The only health scenario is held out for the probes, but a science training scenario nearly
    # duplicates it: the guard removes it, and the mix says so once (or refuses under --strict).
    health = make_scenario(0, "health", "truthfulness")
    science = near_copy(health, 1, "science", "truthfulness")
    run = _ready(write_run(tmp_path / "runs", [health, science, make_scenario(2, "business", "truthfulness")]))
    meta = run_mix(MixConfig(runs=[run], out=tmp_path / "m", recipe="paper-5pct", spread=OFF))
    warnings = _warnings(capsys.readouterr().err)
    assert len(warnings) == 1 and "left after the contamination guard" in warnings[0], warnings
    assert meta.contamination["removed"] == {"heldout": 1} and "persistence_plain" not in meta.splits
    assert "left after the contamination guard" in meta.persistence["skipped"]  # type: ignore[index]
    with pytest.raises(ConfigError, match="^--strict: .* left after the contamination guard .*; nothing was written$"):
        run_mix(MixConfig(runs=[run], out=tmp_path / "s", recipe="paper-5pct", spread=OFF, strict=True))
    assert not (tmp_path / "s").exists()
