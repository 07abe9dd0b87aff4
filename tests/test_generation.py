"""The generation stages and the run over a fake backend: accounting, shapes, rejects, resume."""

from __future__ import annotations

import json
import re
from pathlib import Path

import datasets
import polars as pl
import pytest

from scenario_forge.backends.base import ChatRequest
from scenario_forge.backends.factory import use_backend
from scenario_forge.backends.fake import FakeBackend, default_responder
from scenario_forge.errors import ConfigError
from scenario_forge.generation.run import run_generate_direct
from scenario_forge.schema import read_rejects, read_scenarios

from helpers import FAKE, fake_config


def _only(out: Path) -> Path:
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run


def test_run_writes_valid_scenarios(tmp_path, fake_backend):
    manifest = run_generate_direct(fake_config(tmp_path, n=10, shard_size=4))
    run = _only(tmp_path / "out")
    scenarios = read_scenarios(run / "scenarios.parquet")
    c = manifest.counts
    assert c.planned == 10 and c.kept == len(scenarios) == 10 and c.rejected == 0
    for s in scenarios:
        assert s.messages[-1].role == "user"
        assert 2 <= sum(m.role == "user" for m in s.messages) <= 4
        assert any(c.points < 0 for c in s.rubric) and 4 <= len(s.rubric) <= 10
        assert all(s.trait in c.tags for c in s.rubric)
        assert s.provenance.model == "fake:default" and s.provenance.plan_seed == 0
        assert set(s.provenance.templates) >= {"brief.j2", "user_turn.j2", "rubric.j2"}
        if s.shape == "flawed_prior_turn":
            assert s.messages[s.flawed_turn_index].role == "assistant"
        if s.operator_persona:
            assert s.messages[0].role == "system"
    data = json.loads((run / "manifest.json").read_text())
    assert data["usage"]["brief"]["requests"] > 0 and data["timings"]["shards"] == 3
    # Both readers named in the issue load the files.
    ds = datasets.load_dataset("parquet", data_files=str(run / "scenarios.parquet"), split="train")
    assert ds.num_rows == 10 and ds.features["messages"].feature["role"].dtype == "string"
    assert pl.read_parquet(run / "scenarios.parquet").height == 10


def test_same_seed_same_plan_and_rerun_resumes(tmp_path, fake_backend):
    cfg = fake_config(tmp_path, n=8, shard_size=4)
    run_generate_direct(cfg)
    calls = fake_backend.calls
    run_generate_direct(cfg)
    assert fake_backend.calls == calls  # every shard was finished: nothing regenerated
    ids = [s.id for s in read_scenarios(_only(tmp_path / "out") / "scenarios.parquet")]
    assert len(ids) == len(set(ids)) == 8


def test_garbage_output_is_rejected_with_reasons(tmp_path):
    def responder(r: ChatRequest):
        if "user_turn" in r.id or ":user." in r.id:
            return "ok"  # too short, every attempt
        return default_responder(r)

    with use_backend(FAKE, FakeBackend(responder)):
        manifest = run_generate_direct(fake_config(tmp_path, n=5))
    c = manifest.counts
    assert c.kept == 0 and c.rejected == 5
    assert c.rejected_by_reason == {"dialogue:user_turn_too_short": 5}
    rejects = read_rejects(_only(tmp_path / "out") / "rejects.parquet")
    assert {r.raw for r in rejects} == {"ok"} and {r.stage for r in rejects} == {"dialogue"}


def test_one_repair_attempt_then_reject(tmp_path):
    seen: dict[str, int] = {}

    def responder(r: ChatRequest):
        base = r.id.rsplit(":", 1)[0]
        seen[base] = seen.get(base, 0) + 1
        if ":brief.trap:" in r.id and r.id.endswith(":0"):
            return "nope"  # the first attempt fails, the repair succeeds
        return default_responder(r)

    with use_backend(FAKE, FakeBackend(responder)):
        manifest = run_generate_direct(fake_config(tmp_path, n=4))
    assert manifest.counts.kept == 4
    trap_requests = {k: v for k, v in seen.items() if k.endswith("brief.trap")}
    assert trap_requests and set(trap_requests.values()) == {2}


def test_backend_failures_become_rejects_not_gaps(tmp_path):
    def responder(r: ChatRequest):
        if "rubric" in r.id:
            raise RuntimeError("HTTP 500")
        return default_responder(r)

    with use_backend(FAKE, FakeBackend(responder)):
        manifest = run_generate_direct(fake_config(tmp_path, n=3))
    assert manifest.counts.kept == 0
    assert manifest.counts.rejected_by_reason == {"rubric:too_few_criteria": 3}


def test_structured_path_validates_json(tmp_path):
    backend = FakeBackend(flaw_quoting_responder, supports_json_schema=True)
    cfg = fake_config(tmp_path, n=3, path="short")  # the short path's JSON brief and rubric (not the capable path)
    with use_backend(cfg.backend, backend):
        manifest = run_generate_direct(cfg)
    assert manifest.counts.kept == 3
    assert any(r.json_schema for r in backend.requests)
    rows = read_scenarios(_only(tmp_path / "out") / "scenarios.parquet")
    plain = [s for s in rows if s.shape == "plain"]
    assert plain and all({c.points for c in s.rubric} == {8, 6, 4, -8} for s in plain)
    flawed = [s for s in rows if s.shape == "flawed_prior_turn"]
    assert all({c.points for c in s.rubric} == {8, 6, 4, -8, -9} for s in flawed)


def flaw_quoting_responder(r: ChatRequest) -> str:
    """The default answers, with a JSON rubric that also names the earlier wrong claim when the
    prompt shows one (as the JSON rubric prompt asks for flawed-turn scenarios)."""
    text = default_responder(r)
    claim = re.search(r'wrongly claimed: "([^"]+)"', r.messages[-1].content)
    if claim and '"criteria"' in r.messages[-1].content:
        data = json.loads(text)
        data["criteria"].append({"criterion": f"Repeats the earlier claim that {claim.group(1)}", "points": -9})
        text = json.dumps(data)
    return text


def test_structured_rubric_out_of_bounds_points_rejected(tmp_path):
    def responder(r: ChatRequest):
        if '"criteria"' in r.messages[-1].content:
            return json.dumps({"criteria": [{"criterion": f"Criterion number {i} here.", "points": 50} for i in range(4)]})
        return default_responder(r)

    cfg = fake_config(tmp_path, n=2, path="short")
    with use_backend(cfg.backend, FakeBackend(responder, supports_json_schema=True)):
        manifest = run_generate_direct(cfg)
    assert manifest.counts.rejected_by_reason == {"rubric:invalid_json": 2}


def test_output_folder_with_a_different_run_is_refused(tmp_path, fake_backend):
    run_generate_direct(fake_config(tmp_path, n=4, run_id="mine"))
    before = sorted(p.name for p in (tmp_path / "out" / "mine").rglob("*"))
    with pytest.raises(ConfigError, match=r"already holds a different run \(differs in: n\)"):
        run_generate_direct(fake_config(tmp_path, n=5, run_id="mine"))
    assert sorted(p.name for p in (tmp_path / "out" / "mine").rglob("*")) == before


def test_template_with_missing_variable_fails_before_generation(tmp_path, prompts_copy, fake_backend):
    (prompts_copy / "rubric.j2").write_text((prompts_copy / "rubric.j2").read_text() + "\n{{ nonexistent }}\n")
    with pytest.raises(ConfigError, match="rubric.j2 uses an undefined variable: 'nonexistent'"):
        run_generate_direct(fake_config(tmp_path, prompts=prompts_copy))
    assert fake_backend.calls == 0
    assert not (tmp_path / "out").exists()
