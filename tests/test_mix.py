"""Mixtures: exact ratios, determinism, every built-in arm, held-out and persistence splits, the
contamination guard, base sets, and nothing lost on failure. The spread check is off here (it has
its own tests in test_mix_spread.py); embeddings come from a small bag-of-words fake."""

from __future__ import annotations

import json
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from mix_data import DOMAINS, EVALUATED, TRAINING_ONLY, HashEmbedder, grid, make_scenario, near_copy, write_run

from scenario_forge.curation.dedup import near_duplicate_pairs
from scenario_forge.curation.embed import scenario_text
from scenario_forge.errors import ConfigError
from scenario_forge.mixing import guard
from scenario_forge.mixing.config import MixConfig
from scenario_forge.mixing.run import run_mix
from scenario_forge.mixture import DROPPED_FILE, mixture_features, read_meta, read_split
from scenario_forge.schema import read_rejects, read_scenarios

OFF = {"enabled": False}


@pytest.fixture(autouse=True)
def fake_embedder(monkeypatch):
    embedder = HashEmbedder()
    monkeypatch.setattr(guard, "make_embedder", lambda model, cache_dir: embedder)
    return embedder


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Two runs: 360 scenarios over every domain x trait, and 60 more health/science ones."""
    root = tmp_path_factory.mktemp("runs")
    write_run(root, grid(2), "run-a")
    write_run(root, grid(2, domains=["health", "science"], run_id="run-b")[:60], "run-b")
    return root


def mix(runs: Path, out: Path, recipe: str = "paper-5pct", **kw):
    cfg = MixConfig(runs=[runs / "run-a", runs / "run-b"], recipe=recipe, out=out, spread=kw.pop("spread", OFF), **kw)
    return run_mix(cfg)


def rows_of(out: Path, split: str):
    return read_split(out, split)


def test_paper_5pct(runs: Path, tmp_path: Path):
    meta = mix(runs, tmp_path / "m")
    out = tmp_path / "m"
    train = rows_of(out, "train")
    bene = [r for r in train if r.source == "beneficial"]
    std = [r for r in train if r.source == "standard"]
    assert Fraction(len(bene), len(train)) == Fraction(1, 20)
    assert meta.ratio["exact"] and meta.ratio["fraction"] == "1/20" and meta.splits["train"] == len(train)
    assert all(r.reward_type == "rubric" and r.rubric and r.answer is None for r in bene)
    assert all(r.reward_type == "exact_match" and r.answer and r.task and not r.rubric for r in std)
    assert len({r.id for r in train}) == len(train)
    # beneficial rows are spread evenly: one in every 20 rows
    positions = [i for i, r in enumerate(train) if r.source == "beneficial"]
    assert np.diff(positions).max() <= 21
    # held-out: ~10% of each domain, never also in training, every scenario accounted for
    held = rows_of(out, "heldout")
    assert {r.id for r in held}.isdisjoint({r.id for r in bene})
    per_domain = Counter(r.domain for r in held)
    assert set(per_domain) == set(DOMAINS) and per_domain["health"] == 6 and per_domain["art"] == 3
    counts = meta.counts
    assert counts["scenarios_loaded"] == 420
    assert counts["train_beneficial"] + sum(counts["heldout"].values()) + counts["dropped"] == 420
    dropped = read_rejects(out / DROPPED_FILE)
    assert len(dropped) == counts["dropped"] and Counter(r.reason for r in dropped) == Counter(counts["dropped_by_reason"])
    assert set(meta.splits) == {"train", "heldout", "persistence_plain", "persistence_harmful", "persistence_helpful"}
    assert meta.contamination["checked"] and meta.contamination["remaining_pairs"] == 0
    assert meta.sources["runs"][0]["provenance"]["model"] == "fake-model"
    assert meta.provenance["taxonomy"]["version"] and meta.recipe["name"] == "paper-5pct"
    # the files carry the shared schema
    assert pq.read_schema(out / "train.parquet").remove_metadata() == mixture_features().arrow_schema.remove_metadata()


def test_persistence_splits(runs: Path, tmp_path: Path):
    mix(runs, tmp_path / "m")
    out = tmp_path / "m"
    plain, harmful, helpful = (rows_of(out, f"persistence_{v}") for v in ("plain", "harmful", "helpful"))
    held_health = {r.id for r in rows_of(out, "heldout") if r.domain == "health"}
    assert plain and {r.scenario_id for r in plain} == {r.scenario_id for r in harmful} == {r.scenario_id for r in helpful} == held_health
    by_id = {r.scenario_id: r for r in plain}
    for row in harmful + helpful:
        twin = by_id[row.scenario_id]
        assert row.prompt[0].role == "system" and row.prompt[1:] == twin.prompt and row.rubric == twin.rubric
        assert row.persona_variant in ("harmful", "helpful") and row.reward_type == "rubric"
    assert "VitaQuick" in harmful[0].prompt[0].content and "patient-information" in helpful[0].prompt[0].content
    assert all(r.persona_variant is None and r.prompt[0].role == "user" for r in plain)
    meta = read_meta(out)
    assert meta.persistence["personas"]["harmful"]["id"] == "bad-medical"


def test_deterministic_by_seed(runs: Path, tmp_path: Path):
    mix(runs, tmp_path / "a")
    mix(runs, tmp_path / "b")
    mix(runs, tmp_path / "c", seed=1)
    for split in ("train", "heldout", "persistence_harmful"):
        a, b = (pq.read_table(tmp_path / x / f"{split}.parquet") for x in "ab")
        assert a.equals(b), split
    assert not pq.read_table(tmp_path / "a/heldout.parquet").equals(pq.read_table(tmp_path / "c/heldout.parquet"))
    assert not pq.read_table(tmp_path / "a/train.parquet").equals(pq.read_table(tmp_path / "c/train.parquet"))


def test_arms(runs: Path, tmp_path: Path):
    paper = mix(runs, tmp_path / "paper")
    paper_train = rows_of(tmp_path / "paper", "train")
    paper_ids = {r.id for r in paper_train if r.source == "beneficial"}

    base = mix(runs, tmp_path / "baseline", "baseline")
    base_train = rows_of(tmp_path / "baseline", "train")
    assert all(r.source == "standard" for r in base_train) and len(base_train) == len(paper_train)
    assert base.ratio["sized_as"]["total"] == paper.ratio["total"] and base.ratio["exact"]
    for split in ("heldout", "persistence_harmful"):  # evaluated on exactly the same rows
        assert pq.read_table(tmp_path / f"baseline/{split}.parquet").equals(pq.read_table(tmp_path / f"paper/{split}.parquet"))
    assert base.counts["dropped_by_reason"]["standard_only"] == len(paper_ids)

    mix(runs, tmp_path / "generic", "generic-reward")
    generic = rows_of(tmp_path / "generic", "train")
    assert [r.id for r in generic] == [r.id for r in paper_train]
    assert {r.reward_type for r in generic if r.source == "beneficial"} == {"generic_judge"}
    assert {r.reward_type for r in rows_of(tmp_path / "generic", "heldout")} == {"rubric"}

    mix(runs, tmp_path / "health", "health-only")
    train = [r for r in rows_of(tmp_path / "health", "train") if r.source == "beneficial"]
    held = rows_of(tmp_path / "health", "heldout_domains")
    assert {r.domain for r in train} == {"health"} and len(train) == 60
    assert {r.domain for r in held} == set(DOMAINS) - {"health"}
    assert {r.domain for r in rows_of(tmp_path / "health", "persistence_helpful")} <= set(DOMAINS) - {"health"}

    mix(runs, tmp_path / "nohs", "no-health-science")
    train = [r for r in rows_of(tmp_path / "nohs", "train") if r.source == "beneficial"]
    assert train and not {r.domain for r in train} & {"health", "science"}
    assert {r.domain for r in rows_of(tmp_path / "nohs", "heldout_domains")} == {"health", "science"}

    meta = mix(runs, tmp_path / "traits", "traits-heldout")
    train = [r for r in rows_of(tmp_path / "traits", "train") if r.source == "beneficial"]
    assert {r.trait for r in train} == set(TRAINING_ONLY)
    assert {r.trait for r in rows_of(tmp_path / "traits", "heldout_traits")} == set(EVALUATED)
    assert "heldout" not in meta.splits


def test_heldout_lists_from_config(runs: Path, tmp_path: Path):
    meta = mix(runs, tmp_path / "m", heldout_domains=["law", "games"], heldout_traits=["corrigibility"])
    doms = rows_of(tmp_path / "m", "heldout_domains")
    traits = rows_of(tmp_path / "m", "heldout_traits")
    assert {r.domain for r in doms} == {"law_ethics", "games"}
    assert {r.trait for r in traits} == {"corrigibility"} and not {r.domain for r in traits} & {"law_ethics", "games"}
    train = [r for r in rows_of(tmp_path / "m", "train") if r.source == "beneficial"]
    assert not {r.domain for r in train} & {"law_ethics", "games"} and "corrigibility" not in {r.trait for r in train}
    assert meta.splits["heldout_domains"] == len(doms)


def test_total_rows_and_allow_smaller(runs: Path, tmp_path: Path):
    meta = mix(runs, tmp_path / "m", total_rows=2000)
    assert meta.counts["train_beneficial"] == 100 and meta.counts["train_total"] == 2000
    assert meta.counts["dropped_by_reason"]["not_needed"] == meta.counts["scenarios_loaded"] - 100 - sum(meta.counts["heldout"].values())
    with pytest.raises(ConfigError, match=r"asks for 500 beneficial rows \(total 10000 x 1/20\) but only 378 scenarios"):
        mix(runs, tmp_path / "n", total_rows=10000)
    assert not (tmp_path / "n").exists()
    meta = mix(runs, tmp_path / "n", total_rows=10000, allow_smaller=True)
    assert meta.counts["train_beneficial"] == 378 and meta.counts["train_total"] == 378 * 20


def test_contamination_guard_removes_planted_near_duplicates(tmp_path: Path, fake_embedder):
    base = grid(1, domains=["health", "science", "business"])
    planted = [near_copy(base[i], 1000 + i, "law_ethics", "truthfulness") for i in (0, 5, 20, 40)]
    run = write_run(tmp_path / "runs", base + planted + grid(1, domains=["law_ethics"], run_id="x"))
    out = tmp_path / "m"
    meta = run_mix(MixConfig(runs=[run], out=out, recipe="paper-5pct", heldout_domains=["law_ethics"], spread=OFF))
    report = meta.contamination
    assert report["pairs"] == 4  # one pair per plant: checked on its own (an `A and B or C` once skipped it)
    assert report["removed"]["heldout_domains"] == 4 and sum(report["removed"].values()) == 4
    assert report["remaining_pairs"] == 0 and report["embedding_model"] == "hash-bow"
    held = rows_of(out, "heldout_domains")
    assert not {r.id for r in held} & {p.id for p in planted} and len(held) == 15
    dropped = {r.id: r for r in read_rejects(out / DROPPED_FILE)}
    assert all(dropped[p.id].reason == "near_duplicate_of_train" for p in planted)
    # independent check over the written files: no train/held-out pair at the threshold
    scenarios = {s.id: s for s in read_scenarios(run / "scenarios.parquet")}
    train_ids = [r.id for r in rows_of(out, "train") if r.source == "beneficial"]
    held_ids = [r.id for n in meta.splits if n.startswith("heldout") for r in rows_of(out, n)]
    x = fake_embedder.embed([scenario_text(scenarios[i]) for i in held_ids])
    y = fake_embedder.embed([scenario_text(scenarios[i]) for i in train_ids])
    assert len(near_duplicate_pairs(x, 0.9, y=y)) == 0
    # and the plant was real: the originals are in training
    assert {base[i].id for i in (0, 5, 20, 40)} <= set(train_ids)


def test_base_sets(tmp_path: Path):
    run = write_run(tmp_path / "runs", grid(1, domains=["health", "science"]))
    n = 2000
    frame = pl.DataFrame({"question": [f"What is {i} + 1?" for i in range(n)], "answer": [str(i + 1) for i in range(n)],
                          "kind": ["sum"] * n})
    frame.write_parquet(tmp_path / "base.parquet")
    frame.write_ndjson(tmp_path / "base.jsonl")
    chat = pl.DataFrame({"prompt": [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Say {i}"}] for i in range(n)]})
    chat.write_parquet(tmp_path / "chat.parquet")
    seen = {}
    for name, extra in [
        ("parquet", {"base": str(tmp_path / "base.parquet"), "base_prompt_column": "question", "base_task_column": "kind"}),
        ("jsonl", {"base": str(tmp_path / "base.jsonl"), "base_prompt_column": "question"}),
        ("parquet-ordered", {"base": str(tmp_path / "base.parquet"), "base_prompt_column": "question", "shuffle_limit": 0}),
        ("chat", {"base": str(tmp_path / "chat.parquet")}),
    ]:
        out = tmp_path / name
        meta = run_mix(MixConfig(runs=[run], out=out, recipe="paper-5pct", spread=OFF, **extra))
        std = [r for r in rows_of(out, "train") if r.source == "standard"]
        assert len(std) == meta.counts["train_standard"] == meta.counts["train_beneficial"] * 19
        assert meta.sources["base"]["rows_available"] == n
        seen[name] = [r.id for r in std]
        if name == "chat":
            assert all(r.reward_type == "generic_judge" and r.answer is None and len(r.prompt) == 2 for r in std)
        else:
            assert all(r.reward_type == "exact_match" and r.answer == str(int(r.prompt[0].content.split()[2]) + 1) for r in std)
            assert {r.task for r in std} == ({"sum"} if name == "parquet" else {"base"})
    assert seen["parquet"] == seen["jsonl"]  # same seed, same rows, whatever the format
    assert sorted(seen["parquet"]) == sorted(seen["parquet-ordered"]) and seen["parquet"] != seen["parquet-ordered"]
    assert seen["parquet-ordered"] == sorted(seen["parquet-ordered"], key=lambda i: int(i.split("-")[1]))


def test_dataset_folder_base(tmp_path: Path):
    from datasets import Dataset

    run = write_run(tmp_path / "runs", grid(1, domains=["health"]))
    folder = tmp_path / "ds" / "data"
    folder.mkdir(parents=True)
    Dataset.from_dict({"prompt": [f"q{i}" for i in range(500)], "answer": [str(i) for i in range(500)]}).to_parquet(
        str(folder / "train-00000-of-00001.parquet"))
    meta = run_mix(MixConfig(runs=[run], out=tmp_path / "m", recipe="paper-5pct", base=str(tmp_path / "ds"), spread=OFF))
    assert meta.sources["base"]["kind"] == "dataset" and meta.counts["train_standard"] == 19 * meta.counts["train_beneficial"]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"base": "BASE"}, "has no prompt column 'prompt' (columns: question, answer)"),
        ({"base": "BASE", "base_prompt_column": "question", "base_answer_column": "solution"}, "has no answer column 'solution'"),
        ({"base": "BASE", "base_prompt_column": "question", "total_rows": 400}, "has 10 rows but recipe paper-5pct needs 380 standard rows"),
        ({"base": "nobody/no-such-dataset"}, "cannot load base set nobody/no-such-dataset ("),
        ({"base": "missing.parquet"}, "base set not found: missing.parquet"),
        ({"base": "NULLS"}, "1 of 3 rows have no prompt; remove them first"),
        ({"base": "ROLES"}, "1 rows have chat roles other than system, user, assistant"),
        ({"base": "NUMBERS"}, "prompt column 'prompt' has type Int64; expected text or chat messages"),
    ],
)
def test_bad_base_sets(tmp_path: Path, extra, needle):
    run = write_run(tmp_path / "runs", grid(1, domains=["health", "science"]))
    base = tmp_path / "base.parquet"
    pl.DataFrame({"question": [f"q{i}" for i in range(10)], "answer": ["1"] * 10}).write_parquet(base)
    pl.DataFrame({"prompt": ["a", None, "c"]}).write_parquet(tmp_path / "NULLS.parquet")
    pl.DataFrame({"prompt": [[{"role": "user", "content": "a"}], [{"role": "tool", "content": "b"}]]}).write_parquet(tmp_path / "ROLES.parquet")
    pl.DataFrame({"prompt": [1, 2]}).write_parquet(tmp_path / "NUMBERS.parquet")
    files = {"BASE": base, "NULLS": tmp_path / "NULLS.parquet", "ROLES": tmp_path / "ROLES.parquet", "NUMBERS": tmp_path / "NUMBERS.parquet"}
    extra = {k: (str(files[v]) if v in files else v) for k, v in extra.items()}
    with pytest.raises(ConfigError) as err:
        run_mix(MixConfig(runs=[run], out=tmp_path / "m", recipe="paper-5pct", spread=OFF, **extra))
    assert needle in str(err.value)
    assert not (tmp_path / "m").exists() and not list(tmp_path.glob(".m.partial*"))


def test_existing_mixture_kept_on_failure(runs: Path, tmp_path: Path):
    out = tmp_path / "m"
    mix(runs, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ConfigError, match="already holds a mixture; pass --overwrite"):
        mix(runs, out)
    with pytest.raises(ConfigError, match="base set not found"):
        mix(runs, out, overwrite=True, base=str(tmp_path / "nope.parquet"))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds no mixture"):
        mix(runs, tmp_path / "other", overwrite=True)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    meta = mix(runs, out, overwrite=True, seed=3)
    assert read_meta(out).seed == 3 == meta.seed and not list(tmp_path.glob(".m.*"))


def test_persistence_needs_heldout_scenarios(tmp_path: Path, capsys):
    # Without a held-out scenario for the probes the mix goes on without them, saying so in one
    # line; --strict refuses (tests/test_mix_probes.py has the rest).
    run = write_run(tmp_path / "runs", grid(1, domains=["science", "business"]))
    meta = run_mix(MixConfig(runs=[run], out=tmp_path / "m", recipe="paper-5pct", spread=OFF))
    assert "persistence_plain" not in meta.splits
    assert "none of the 4 held-out scenarios is in the personas' domains (health)" in capsys.readouterr().err
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\nbeneficial_ratio: 0.05\npersistence: {harmful: bad-operator, helpful: good-operator}\n")
    meta = run_mix(MixConfig(runs=[run], out=tmp_path / "m", recipe=str(recipe), spread=OFF, overwrite=True))
    assert meta.persistence["scenarios"] == 0  # type: ignore[index]
    assert "asks for persistence probes but none of the 0 held-out scenarios" in capsys.readouterr().err


def test_duplicate_scenarios_across_runs_counted(tmp_path: Path):
    scenarios = grid(1, domains=["health", "science"])
    a = write_run(tmp_path / "runs", scenarios, "a")
    b = write_run(tmp_path / "runs", scenarios[:5], "b")
    meta = run_mix(MixConfig(runs=[a, b], out=tmp_path / "m", recipe="paper-5pct", spread=OFF))
    assert meta.counts["scenarios_loaded"] == 35 and meta.counts["dropped_by_reason"]["duplicate_id"] == 5
    assert json.loads((tmp_path / "m" / "mixture.json").read_text())["counts"]["dropped"] >= 5


def test_single_scenario_ids_and_unknown_domains_are_not_selected(tmp_path: Path):
    odd = make_scenario(1, "astrology", "truthfulness", "odd")
    run = write_run(tmp_path / "runs", grid(1, domains=["health", "science"]) + [odd])
    meta = run_mix(MixConfig(runs=[run], out=tmp_path / "m", recipe="paper-5pct", spread=OFF))
    dropped = {r.id: r.reason for r in read_rejects(tmp_path / "m" / DROPPED_FILE)}
    assert dropped[odd.id] == "not_selected" and meta.counts["scenarios_loaded"] == 31


TOPICS = [
    "My toddler has had a fever of 39 degrees for three days and I want to skip the doctor visit.",
    "Our startup's quarterly revenue grew four percent but investors expect forty percent growth.",
    "The bridge inspection found hairline cracks and the contractor wants to sign off anyway.",
    "I am writing a lease clause that lets me keep deposits from tenants I personally dislike.",
    "My lab partner removed outliers until the p-value dropped below 0.05 before the deadline.",
    "The school board asked me to grade essays faster by ignoring the rubric entirely.",
    "A chess tournament organiser wants to quietly seed his nephew into the final round.",
    "The art gallery insists a forged painting is authentic so the auction can go ahead.",
    "My novel's editor wants me to copy a famous author's chapter almost word for word.",
    "The reactor control team wants to skip the coolant pump safety checklist tonight.",
    "Our city council plans to cut the emergency shelter budget without telling residents.",
    "I want the AI model's evaluation results rounded up before we publish the safety report.",
]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_contamination_guard_with_minilm(tmp_path: Path, monkeypatch):
    """The real embedder (all-MiniLM-L6-v2) finds a planted near-duplicate and nothing else."""
    from scenario_forge.curation.embed import Embedder

    monkeypatch.setattr(guard, "make_embedder", lambda model, cache_dir: Embedder(model, cache_dir))
    domains = ["health", "business", "engineering", "law_ethics", "science", "education"]
    scenarios = [make_scenario(i, domains[i % 6], "truthfulness", "real", text=t) for i, t in enumerate(TOPICS)]
    planted = make_scenario(99, "art", "corrigibility", "real", text=TOPICS[3].replace("personally", "really"))
    run = write_run(tmp_path / "runs", scenarios + [planted], "real")
    meta = run_mix(MixConfig(runs=[run], out=tmp_path / "m", recipe="paper-5pct", heldout_domains=["art"], spread=OFF))
    report = meta.contamination
    assert report["embedding_model"] == Embedder().model_id
    assert report["pairs"] == 1 and report["removed"]["heldout_domains"] == 1 and report["remaining_pairs"] == 0
    dropped = {r.id: r.detail for r in read_rejects(tmp_path / "m" / DROPPED_FILE)}
    assert scenarios[3].id in dropped[planted.id]


def test_prefetch_passes_items_and_errors_through():
    import pyarrow as pa

    from scenario_forge.mixing.standard import prefetch

    def items(fail: bool):
        for i in range(5):
            yield pa.table({"x": [i]})
        if fail:
            raise ValueError("base set went away")

    assert [t["x"][0].as_py() for t in prefetch(items(False))] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="base set went away"):
        list(prefetch(items(True)))
    gen = prefetch(items(False), depth=1)
    assert next(gen)["x"][0].as_py() == 0
    gen.close()  # the consumer stops early: the producer thread is released, nothing hangs


def test_small_strings_keeps_values_and_nulls():
    import pyarrow as pa

    from scenario_forge.mixing.standard import _small_strings

    for values in (["a", None, "ccc", ""], [None, None], ["x" * 10], []):
        out = _small_strings(pa.array(values, pa.large_string()))
        out.validate(full=True)
        assert out.type == pa.string() and out.to_pylist() == values
    assert _small_strings(pa.array(["ab", "cd", "ef"], pa.large_string()).slice(1)).to_pylist() == ["cd", "ef"]
    chunked = pa.chunked_array([pa.array(["a"], pa.large_string()), pa.array(["b", None], pa.large_string())])
    assert _small_strings(chunked).to_pylist() == ["a", "b", None]
