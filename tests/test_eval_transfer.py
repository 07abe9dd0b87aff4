"""Transfer domains come from the mixture (issue 16): the domains of the arm's beneficial training
rows are "trained", every other domain is transfer; ``--trained-domain`` still overrides. Mixtures
are built by the mixer from synthetic runs; models and judge are fakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mix_data import DOMAINS, HashEmbedder, grid, write_run
from tiny_mixture import write_mixture

from scenario_forge.backends.factory import use_backend
from scenario_forge.backends.fake import FakeBackend
from scenario_forge.config import BackendConfig
from scenario_forge.evaluation import EvalConfig, evaluate
from scenario_forge.modelspec import model_backend_config
from scenario_forge.evaluation.run import prepare_eval
from scenario_forge.mixing import guard
from scenario_forge.mixing.config import MixConfig
from scenario_forge.mixture import read_meta, trained_domains
from scenario_forge.mixing.run import run_mix

JUDGE = BackendConfig(kind="fake", model="judge")
MODEL = model_backend_config("fake:model")
BASE = model_backend_config("fake:base")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    write_run(root, grid(1, traits=["truthfulness", "corrigibility", "downside_aware_planning"]), "run-a")
    return root / "run-a"


@pytest.fixture(autouse=True)
def fakes(monkeypatch):
    monkeypatch.setattr(guard, "make_embedder", lambda model, cache_dir: HashEmbedder())
    with use_backend(JUDGE, FakeBackend(lambda r: "YES")), use_backend(MODEL, FakeBackend(lambda r: "Careful answer.")), \
            use_backend(BASE, FakeBackend(lambda r: "Sure.")):
        yield


def _mix(runs: Path, out: Path, recipe: str):
    return run_mix(MixConfig(runs=[runs], out=out, recipe=recipe, spread={"enabled": False}))


def _eval(mixture: Path, out: Path, **kw) -> dict:
    cfg = EvalConfig(mixture=mixture, model=MODEL, baseline=BASE, judge=JUDGE, out=out, bootstrap=100, min_pairs=2, **kw)
    evaluate(cfg)
    return json.loads((out / "eval.json").read_text())


def test_mixer_records_the_domains_of_its_beneficial_draw(runs: Path, tmp_path: Path):
    others = sorted(set(DOMAINS) - {"health", "science"})
    assert _mix(runs, tmp_path / "nhs", "no-health-science").trained_domains == others
    assert _mix(runs, tmp_path / "ho", "health-only").trained_domains == ["health"]
    assert _mix(runs, tmp_path / "base", "baseline").trained_domains == []  # a standard-only arm trains on no scenario


def test_transfer_is_read_from_the_mixture(runs: Path, tmp_path: Path):
    _mix(runs, tmp_path / "nhs", "no-health-science")
    report = _eval(tmp_path / "nhs", tmp_path / "e", splits=["heldout_domains"])
    t = report["figures"]["transfer"]
    # health and science were held out of the 5% draw: they are the transfer domains, not the default ["health"]
    assert t["trained_domains"] == sorted(set(DOMAINS) - {"health", "science"})
    assert t["in_domain"]["n_pairs"] == 0 and t["transfer"]["n_pairs"] == len(t["domains"]) * 3 == 6
    assert {d: e["trained"] for d, e in t["domains"].items()} == {"health": False, "science": False}
    assert report["meta"]["trained_domains_from"] == "mixture"
    assert "the mixture's beneficial training rows" in (tmp_path / "e" / "eval.md").read_text()


def test_health_only_arm_transfers_to_every_other_domain(runs: Path, tmp_path: Path):
    _mix(runs, tmp_path / "ho", "health-only")
    t = _eval(tmp_path / "ho", tmp_path / "e", splits=["heldout_domains"], max_rows=6)["figures"]["transfer"]
    assert t["trained_domains"] == ["health"] and t["in_domain"]["n_pairs"] == 0 and t["transfer"]["n_pairs"] == 6


def test_an_explicit_override_still_wins(runs: Path, tmp_path: Path):
    _mix(runs, tmp_path / "nhs", "no-health-science")
    report = _eval(tmp_path / "nhs", tmp_path / "e", splits=["heldout_domains"], trained_domains=["science"])
    t = report["figures"]["transfer"]
    assert t["trained_domains"] == ["science"] and t["in_domain"]["n_pairs"] == 3 and t["transfer"]["n_pairs"] == 3
    assert report["meta"]["trained_domains_from"] == "override"


def test_older_mixtures_are_read_from_their_train_split(tmp_path: Path):
    # tiny_mixture writes no trained_domains: the train split's beneficial rows say health, business, law
    mixture = write_mixture(tmp_path / "mix")
    assert read_meta(mixture).trained_domains is None
    assert trained_domains(mixture) == ["business", "health", "law"]
    prepared = prepare_eval(EvalConfig(mixture=mixture, model=MODEL, judge=JUDGE, out=tmp_path / "e"))
    assert prepared.trained_domains == ["business", "health", "law"] and prepared.trained_domains_from == "mixture"
