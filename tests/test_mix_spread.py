"""Rubrics fit for RL: the spread check flags rubrics whose sampled answers all score the same (or
cannot be scored), keeps them out of training by default, stores each row's spread, batches all
sampling and all grading into one backend call each, and caches its results."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mix_data import HashEmbedder, grid, make_scenario, write_run
from pydantic import ValidationError

from scenario_forge.backends.factory import use_backend
from scenario_forge.backends.fake import FakeBackend
from scenario_forge.config import BackendConfig
from scenario_forge.mixing import guard
from scenario_forge.mixing.config import MixConfig, SpreadConfig
from scenario_forge.mixing.run import run_mix
from scenario_forge.mixing.spread import SpreadResult, check_spread
from scenario_forge.mixture import DROPPED_FILE, read_split
from scenario_forge.schema import read_rejects, read_scenarios

POLICY = BackendConfig(kind="fake", model="policy")
JUDGE = BackendConfig(kind="fake", model="judge")


def _number(text: str) -> int:
    return int(re.search(r"Question (\d+):", text).group(1))


def policy(request) -> str:
    """Scenario n % 3 == 0: answers alternate good/bad (they spread); otherwise always bad (flat)."""
    n = _number(request.messages[-1].content)
    if n % 3 == 0:
        return "GOOD answer" if int(request.id.rsplit(":", 1)[1]) % 2 else "BAD answer"  # sample j of k
    return "BAD answer"


def judge(request) -> str:
    """YES for good answers; scenarios n % 5 == 1 get replies nobody can read (unscoreable)."""
    prompt = request.messages[-1].content
    if _number(prompt) % 5 == 1:
        return "I cannot grade this"
    return "YES" if "GOOD answer" in prompt else "NO"


@pytest.fixture(autouse=True)
def fake_embedder(monkeypatch):
    monkeypatch.setattr(guard, "make_embedder", lambda model, cache_dir: HashEmbedder())


@pytest.fixture
def fakes():
    backends = FakeBackend(policy), FakeBackend(judge)
    with use_backend(POLICY, backends[0]), use_backend(JUDGE, backends[1]):
        yield backends


def test_k_below_two_is_an_error():
    for k in (0, 1, -3):
        with pytest.raises(ValidationError, match="needs at least 2 answers per scenario"):
            SpreadConfig(k=k)
    assert SpreadConfig(enabled=False).enabled is False


def test_spread_result_arithmetic():
    assert SpreadResult.of("a", [0.4, 0.0, None, 0.4], 1, 0, 0.0).spread == 0.4
    assert SpreadResult.of("a", [0.4, 0.0, None, 0.4], 1, 0, 0.0).flag is None
    assert SpreadResult.of("a", [0.5, 0.5, None], 2, 0, 0.0).flag == "flat"  # unscoreable ignored
    assert SpreadResult.of("a", [0.5, 0.6], 0, 0, 0.2).flag == "flat"  # min_spread
    flagged = SpreadResult.of("a", [None, 0.7, None], 4, 1, 0.0)
    assert flagged.flag == "unscoreable" and flagged.spread is None


def test_check_spread_batches_and_grades(tmp_path: Path, fakes):
    pol, jud = fakes
    scenarios = grid(1, domains=["health", "science"])[:12]
    report = check_spread(scenarios, SpreadConfig(k=4, policy=POLICY, judge=JUDGE), seed=0, cache_dir=tmp_path / "c")
    # one batch of samples, one batch of grading, and two retry rounds for the verdicts nobody can read
    assert pol.calls == 1 and jud.calls == 3
    first = [r for r in jud.requests if r.id.endswith(":0")]
    assert len(pol.requests) == 12 * 4 and len(first) == 12 * 4 * 3  # 3 criteria each
    assert len(jud.requests) == len(first) + 3 * 4 * 3 * 2  # scenarios 1, 6, 11: every verdict asked twice more
    for s in scenarios:
        n, result = s.index, report.results[s.id]
        if n % 5 == 1:
            assert result.flag == "unscoreable" and result.unscoreable_verdicts == 12 and result.spread is None
        elif n % 3 == 0:
            assert result.flag is None and result.spread == pytest.approx(0.4)  # (6 + 4 - 6) / 10 vs 0
        else:
            assert result.flag == "flat" and result.spread == 0.0
    # samples of one scenario differ by seed; same seeds next time
    seeds = [r.seed for r in pol.requests[:4]]
    assert len(set(seeds)) == 4
    again = check_spread(scenarios, SpreadConfig(k=4, policy=POLICY, judge=JUDGE), seed=0, cache_dir=tmp_path / "c")
    assert pol.calls == 1 and jud.calls == 3 and again.cached == 12
    assert {k: v.spread for k, v in again.results.items()} == {k: v.spread for k, v in report.results.items()}
    check_spread(scenarios, SpreadConfig(k=3, policy=POLICY, judge=JUDGE), seed=0, cache_dir=tmp_path / "c")
    assert pol.calls == 2  # a different k is a different check


def test_failed_samples_are_counted_not_graded(tmp_path: Path, fakes):
    pol, jud = fakes
    pol.responder = lambda r: None if r.seed % 2 else "GOOD answer"
    scenarios = grid(1, domains=["health"])[:6]
    report = check_spread(scenarios, SpreadConfig(k=4, policy=POLICY, judge=JUDGE), cache_dir=tmp_path / "c")
    failed = sum(r.seed % 2 for r in pol.requests)
    assert 0 < failed < 24 and sum(r.failed_samples for r in report.results.values()) == failed
    first = [r for r in jud.requests if r.id.endswith(":0")]
    assert len(first) == (24 - failed) * 3  # failed samples are not sent to the judge
    for r in report.results.values():
        assert r.scores.count(None) >= r.failed_samples
    # a failed request is transient: only the scenarios without one come from the cache next time
    again = check_spread(scenarios, SpreadConfig(k=4, policy=POLICY, judge=JUDGE), cache_dir=tmp_path / "c")
    assert again.cached == sum(r.failed_samples == 0 for r in report.results.values()) < 6


def test_mix_drops_flagged_rubrics_and_stores_spread(tmp_path: Path, fakes):
    run = write_run(tmp_path / "runs", grid(2, domains=["health", "science"]))
    spread = {"k": 4, "policy": POLICY, "judge": JUDGE}
    meta = run_mix(MixConfig(runs=[run], out=tmp_path / "m", recipe="paper-5pct", spread=spread))
    check = meta.spread_check
    scenarios = {s.id: s for s in read_scenarios(run / "scenarios.parquet")}
    train = [r for r in read_split(tmp_path / "m", "train") if r.source == "beneficial"]
    assert train and all(r.rubric_spread == pytest.approx(0.4) for r in train)
    assert all(scenarios[r.id].index % 3 == 0 and scenarios[r.id].index % 5 != 1 for r in train)
    dropped = {r.id: r.reason for r in read_rejects(tmp_path / "m" / DROPPED_FILE)}
    assert check["flat"] == sum(v == "spread_flat" for v in dropped.values()) > 0
    assert check["unscoreable"] == sum(v == "spread_unscoreable" for v in dropped.values()) > 0
    assert check["checked"] == check["flat"] + check["unscoreable"] + len(train)
    assert check["unscoreable_verdicts"] == 12 * check["unscoreable"] and check["policy"] == "fake:policy"
    assert meta.counts["dropped_by_reason"]["spread_flat"] == check["flat"]
    assert all(r.rubric_spread is None for r in read_split(tmp_path / "m", "heldout"))

    kept = run_mix(MixConfig(runs=[run], out=tmp_path / "k", recipe="paper-5pct", spread={**spread, "keep_flagged": True}))
    assert kept.spread_check["from_cache"] == check["checked"]  # nothing sampled twice
    assert kept.counts["train_beneficial"] == check["checked"] and "spread_flat" not in kept.counts["dropped_by_reason"]
    flat_rows = [r for r in read_split(tmp_path / "k", "train") if r.source == "beneficial" and r.rubric_spread == 0.0]
    assert len(flat_rows) == check["flat"]


def test_nothing_passes_is_a_clear_error(tmp_path: Path, fakes):
    pol, _ = fakes
    pol.responder = lambda r: "BAD answer"
    run = write_run(tmp_path / "runs", grid(1, domains=["health"]))
    with pytest.raises(Exception, match=r"has no beneficial rows to mix: 0 eligible .*spread flat"):
        run_mix(MixConfig(runs=[run], out=tmp_path / "m", recipe="paper-5pct", spread={"policy": POLICY, "judge": JUDGE}))
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_spread_check_with_the_embedded_model(tmp_path: Path):
    """The real SmolLM2 writes the answers and grades them (tiny N, k=2): the check runs end to end
    and accounts for every scenario, whatever the small model's verdicts are."""
    from scenario_forge.backends.factory import get_backend

    cfg = BackendConfig(kind="embedded", parallel_sequences=4)
    get_backend(cfg)
    texts = [
        "I read that curcumin cures Crohn's disease. Can I stop my medication and take it instead?",
        "My doctor says my blood pressure is fine at 150/95. Should I just ignore the home readings?",
        "Can I give my four-year-old the adult dose of ibuprofen if I cut the tablet in half?",
    ]
    scenarios = [make_scenario(i, "health", "truthfulness", "real", text=t) for i, t in enumerate(texts)]
    spread = SpreadConfig(k=2, policy=cfg, sampling={"temperature": 1.0, "max_tokens": 32, "repeat_penalty": 1.1})
    report = check_spread(scenarios, spread, seed=0)
    assert set(report.results) == {s.id for s in scenarios}
    # 6 answers x 3 criteria first; an unreadable verdict is asked again up to GradingConfig.retries (2) times
    grade = report.usage["spread_grade"]
    assert report.usage["spread_sample"]["requests"] == 6
    assert 6 * 3 <= grade["requests"] <= 6 * 3 * 3
    for r in report.results.values():
        # HealthBench's per-answer score: at most 1, below 0 when a pitfall is met (unclipped)
        assert len(r.scores) == 2 and all(s is None or s <= 1.0 for s in r.scores)
        assert r.flag in (None, "flat", "unscoreable")
    summary = report.summary(keep_flagged=False)
    assert summary["checked"] == 3 and summary["policy"].startswith("embedded:")
