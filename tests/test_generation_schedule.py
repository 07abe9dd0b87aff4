"""Continuous scheduling on the short path gives the same scenarios as the stage-by-stage code did.

``tests/fixtures/short_path_rows.json`` holds the rows, rejects and usage counts that the code
*before* continuous scheduling (commit 77b87fe: every stage and every turn waited for the whole
shard) produced for the runs in :data:`CASES`, on the fake backend (a deterministic program, not a
labelled set) with :func:`perturbed` answers: some brief fields too short (a repair), some turns
with a placeholder (lint re-asks, some scenarios rejected after them), some rubric slots failing in
the backend, a few user turns that never pass (a dialogue reject). Sampling seeds are keyed on each
request's content, so the same config must give the same rows whatever order the requests go out
in. Regenerate only from that older code (``PYTHONPATH=OLD/src python tests/test_generation_schedule.py``).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from scenario_forge.backends.base import ChatRequest
from scenario_forge.backends.factory import use_backend
from scenario_forge.backends.fake import FakeBackend, default_responder
from scenario_forge.config import BackendConfig, GenerateConfig
from scenario_forge.hashing import content_key
from scenario_forge.generation.run import plan_run, run_generate_direct
from scenario_forge.schema import read_rejects, read_scenarios

FIXTURE = Path(__file__).parent / "fixtures" / "short_path_rows.json"
FAKE = BackendConfig(kind="fake")
#: name -> (GenerateConfig overrides, the fake backend takes JSON schemas)
CASES: dict[str, tuple[dict[str, Any], bool]] = {
    "plain": ({"n": 24, "seed": 5, "shard_size": 10, "domains": ["health", "finance"]}, False),
    "structured": ({"n": 6, "seed": 2, "shard_size": 6, "domains": ["health"], "path": "short"}, True),
}
USAGE_FIELDS = ("requests", "prompt_tokens", "completion_tokens", "retries", "failures", "reasks")


def _bucket(request: ChatRequest, salt: str, *, per_scenario: bool = False) -> int:
    key = request.id.split(":", 1)[0] if per_scenario else (request.id, request.seed)
    return int(content_key(key, salt, length=4), 16) % 100


def perturbed(request: ChatRequest) -> str | None:
    """The fake backend's answers, with deterministic faults keyed on the request or its scenario
    (never on state or arrival order)."""
    rid = request.id
    if ":brief.trap:" in rid and _bucket(request, "no-trap", per_scenario=True) < 8:
        return "nope"  # too short every time: a brief reject
    if ":brief." in rid and rid.endswith(":0") and _bucket(request, "brief") < 15:
        return "nope"  # too short: one repair
    if (":user." in rid or ":assistant." in rid) and _bucket(request, "turn") < 25:
        return "Hello [Your Name], I will get back to you about this whole thing very soon."  # placeholder: lint re-ask
    if ":user.0:" in rid and _bucket(request, "never") < 6:
        return "ok"  # too short every time: a dialogue reject
    if (":rubric.fail" in rid or ":rubric.json:" in rid) and _bucket(request, "no-negative", per_scenario=True) < 15:
        raise RuntimeError("HTTP 500")  # this scenario's negative slots always fail: a rubric reject
    if ":rubric." in rid and _bucket(request, "rubric") < 12:
        raise RuntimeError("HTTP 500")  # a backend failure for this slot
    return default_responder(request)


def run_case(tmp: Path, name: str, **extra: Any) -> dict[str, Any]:
    """One case's rows (scenarios and rejects, in file order) and usage counts per stage."""
    overrides, schema = CASES[name]
    cfg = GenerateConfig(out=tmp / name, backend=FAKE, curate=False, **{**overrides, **extra})
    with use_backend(FAKE, FakeBackend(perturbed, supports_json_schema=schema)):
        manifest = run_generate_direct(cfg)
    run = tmp / name / manifest.run_id
    return {
        "run_id": manifest.run_id,
        "scenarios": [s.model_dump(mode="json") for s in read_scenarios(run / "scenarios.parquet")],
        "rejects": [r.model_dump(mode="json") for r in read_rejects(run / "rejects.parquet")],
        "usage": {stage: {k: u[k] for k in USAGE_FIELDS} for stage, u in sorted(manifest.usage.items())},
    }


def _planned(tmp: Path, name: str) -> list[str]:
    overrides, _ = CASES[name]
    run = plan_run(GenerateConfig(out=tmp / name, backend=FAKE, curate=False, **overrides))
    return [seed.id for shard in run.shards for seed in shard.seeds]


def _by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in rows}


@pytest.mark.parametrize("name", sorted(CASES))
def test_continuous_scheduling_gives_the_rows_of_the_stage_by_stage_code(tmp_path, name):
    expected = json.loads(FIXTURE.read_text())[name]
    got = run_case(tmp_path, name)
    assert got["run_id"] == expected["run_id"]
    # the faults really happened in the fixture: repairs, lint re-asks and rejects of every stage
    stages = {"brief", "dialogue", "rubric"} if name == "plain" else {"rubric"}
    assert expected["scenarios"] and {r["stage"] for r in expected["rejects"]} >= stages
    assert sum(u["reasks"] for u in expected["usage"].values()) > 0
    assert got["scenarios"] == expected["scenarios"]  # kept rows: same content, same (seed) order
    # rejects: now in seed order, not stage order. The fixture predates Reject.messages: compared on its
    # columns, and the new one holds the dialogue on exactly the rubric rejects (written after one)
    fields = set(expected["rejects"][0])
    assert _by_id([{k: v for k, v in r.items() if k in fields} for r in got["rejects"]]) == _by_id(expected["rejects"])
    assert all(bool(r["messages"]) == (r["stage"] == "rubric") for r in got["rejects"])
    planned = {seed_id: i for i, seed_id in enumerate(_planned(tmp_path, name))}
    assert [planned[r["id"]] for r in got["rejects"]] == sorted(planned[r["id"]] for r in got["rejects"])
    assert got["usage"] == expected["usage"]


def test_one_worker_gives_the_same_rows(tmp_path):
    expected = json.loads(FIXTURE.read_text())["plain"]
    got = run_case(tmp_path, "plain", scenario_workers=1)
    assert got["scenarios"] == expected["scenarios"] and got["usage"] == expected["usage"]


def test_a_scenario_does_not_wait_for_the_others(tmp_path):
    """One scenario's requests are slow; the others finish their whole dialogue before it is done
    with its brief (at a stage barrier they could not get past the brief)."""
    order: list[str] = []
    lock = threading.Lock()
    slow: list[str] = []

    def responder(request: ChatRequest) -> str:
        seed_id = request.id.split(":", 1)[0]
        if not slow:
            slow.append(seed_id)
        if seed_id == slow[0] and ":brief." in request.id:
            time.sleep(0.05)
        with lock:
            order.append(request.id)
        return default_responder(request)

    cfg = GenerateConfig(out=tmp_path / "out", backend=FAKE, curate=False, n=4, shard_size=4, domains=["health"])
    with use_backend(FAKE, FakeBackend(responder)):
        manifest = run_generate_direct(cfg)
    assert manifest.counts.kept == 4
    last_slow_brief = max(i for i, rid in enumerate(order) if rid.startswith(slow[0]) and ":brief." in rid)
    others_rubric = [i for i, rid in enumerate(order) if not rid.startswith(slow[0]) and ":rubric." in rid]
    assert others_rubric and min(others_rubric) < last_slow_brief


def write_fixture(tmp: Path) -> None:
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    data = {name: run_case(tmp, name) for name in sorted(CASES)}
    FIXTURE.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {FIXTURE}: " + ", ".join(f"{k}: {len(v['scenarios'])} kept, {len(v['rejects'])} rejected" for k, v in data.items()))


if __name__ == "__main__":
    import tempfile

    import scenario_forge

    print(f"scenario_forge from {scenario_forge.__file__}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        write_fixture(Path(tmp))


def test_criterion_lint_reports_what_lint_scenario_reports():
    """The rubric slots' re-ask check runs only the criterion detectors, once per conversation's
    turns; it must find what the whole ``lint_scenario`` finds for those codes, in the same order."""
    from scenario_forge.lint import lint_scenario
    from scenario_forge.records import Criterion, Dialogue
    from scenario_forge.generation.rubric import CRITERION_CODES, criterion_lint, dialogue_turns

    def reference(d: Dialogue, text: str, points: int) -> tuple[str, str] | None:
        result = lint_scenario(d.seed.id, d.messages, [Criterion(criterion=text, points=points)], trait=d.seed.trait)
        finding = next((f for f in result.findings if f.code in CRITERION_CODES), None)
        return (finding.code, finding.detail) if finding else None

    rows = json.loads(FIXTURE.read_text())["plain"]["scenarios"][:6]
    codes = set()
    for row in rows:
        from scenario_forge.records import Scenario

        s = Scenario.model_validate(row)
        d = Dialogue(seed=_seed_of(s), brief=s.brief, messages=s.messages, flawed_turn_index=s.flawed_turn_index)
        user = next(m.content for m in s.messages if m.role == "user")
        texts = [
            *(c.criterion for c in s.rubric),
            f"A good answer {user.rstrip('.?!').lower()}",  # copies a user turn: a leak
            "A good answer is a good answer.",
            "A good answer demonstrates " + s.trait.replace("_", " ") + " in the response.",
            "A bad answer",
            "A good answer does it well.",
        ]
        turns = dialogue_turns(d)
        for text in texts:
            for points in (5, -5):
                want = reference(d, text, points)
                got = criterion_lint(d, text, points, turns)
                assert (None if got is None else (got.code, got.detail)) == want, text
                assert criterion_lint(d, text, points) == got
                codes.add(want[0] if want else None)
    assert codes >= {None, "rubric_leak", "rubric_self_referential"}, codes


def _seed_of(s):
    from scenario_forge.records import ScenarioSeed

    fields = set(ScenarioSeed.model_fields)
    data = {k: v for k, v in s.model_dump().items() if k in fields}
    return ScenarioSeed.model_validate({**data, "user_turns": sum(m.role == "user" for m in s.messages), "sample_seed": 0})
