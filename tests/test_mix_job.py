"""The mix job's seams: its steps declared once (``MIX_STEPS``) and run by ``run_mix``; the recipe and
taxonomy resolved once, by the config's validator; the staging folder owned by the job
(``scenario_forge.staging``); the publisher's heatmap ordered by the source's own taxonomy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml
from mix_data import HashEmbedder, grid, write_run

from scenario_forge import progress
from scenario_forge.errors import ConfigError
from scenario_forge.mixing import guard
from scenario_forge.mixing import run as mix_run
from scenario_forge.mixing.config import MixConfig
from scenario_forge.mixing.run import MIX_STEPS, run_mix
from scenario_forge.mixture import MixtureMeta, read_meta, write_meta
from scenario_forge.publishing.build import source_taxonomy
from scenario_forge.publishing.config import PublishConfig
from scenario_forge.resources import resource_dir
from scenario_forge.staging import staging_for, staging_path, swap_in
from scenario_forge.steps import step_names
from scenario_forge.taxonomy.loader import load_taxonomy, taxonomy_hash

OFF = {"enabled": False}


@pytest.fixture(autouse=True)
def fake_embedder(monkeypatch):
    monkeypatch.setattr(guard, "make_embedder", lambda model, cache_dir: HashEmbedder())


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return write_run(tmp_path_factory.mktemp("runs"), grid(1, domains=["health", "science", "business"]))


def test_run_mix_runs_the_declared_steps_in_order(run: Path, tmp_path: Path):
    seen: list[str] = []
    stop = progress.listen(lambda event, data: seen.append(data["name"]) if event == "step" else None)
    try:
        meta = run_mix(MixConfig(runs=[run], out=tmp_path / "m", spread=OFF))
    finally:
        stop()
    assert seen == step_names(MIX_STEPS) == ["plan-mixture", "spread-check", "select-rows", "contamination-guard", "write-mixture"]
    assert isinstance(meta, MixtureMeta) and meta.splits == read_meta(tmp_path / "m").splits
    assert [s.tags for s in MIX_STEPS if s.name == "spread-check"] == [("llm",)]  # the one step that calls models


def test_recipe_and_taxonomy_resolved_once_by_the_config(run: Path, tmp_path: Path, monkeypatch):
    config = MixConfig(runs=[run], out=tmp_path / "m", recipe="paper-5pct", seed=7, heldout_domains=["business"], spread=OFF)
    resolution = config.resolution
    assert resolution.resolved.recipe.seed == 7 and resolution.resolved.heldout_domains == ["business"]
    assert set(resolution.personas) == {"harmful", "helpful"} and resolution.recipe_file.name == "paper-5pct.yaml"
    shipped = load_taxonomy()
    assert resolution.taxonomy.hash == taxonomy_hash(shipped) and resolution.taxonomy.name == shipped.name

    def refuse(*args, **kwargs):
        raise AssertionError("the mix resolved again what its config had resolved")

    # Nothing after validation loads the taxonomy or resolves the recipe again.
    monkeypatch.setattr("scenario_forge.taxonomy.loader.load_taxonomy", refuse)
    monkeypatch.setattr("scenario_forge.mixing.recipes.resolve_recipe", refuse)
    monkeypatch.setattr("scenario_forge.mixing.recipes.load_recipe", refuse)
    meta = run_mix(config)
    assert meta.seed == 7 and meta.provenance["taxonomy"] == resolution.taxonomy.model_dump()
    assert "heldout_domains" in meta.splits
    with pytest.raises(ConfigError, match="changed after validation"):
        _ = config.model_copy(update={"seed": 8}).resolution  # a copy that skipped the validator is refused


def test_a_bad_name_fails_in_the_config(run: Path, tmp_path: Path):
    with pytest.raises(ValueError, match="unknown domain"):
        MixConfig(runs=[run], out=tmp_path / "m", heldout_domains=["no-such-domain"], spread=OFF)


def test_a_failed_step_leaves_no_staging_folder_and_the_old_mixture(run: Path, tmp_path: Path, monkeypatch):
    base = tmp_path / "base.jsonl"  # a row-wise base file: the plan step copies it into the staging folder
    pl.DataFrame({"prompt": [f"What is {i} + 1?" for i in range(1000)], "answer": [str(i + 1) for i in range(1000)]}).write_ndjson(base)
    out = tmp_path / "m"
    first = run_mix(MixConfig(runs=[run], out=out, base=str(base), spread=OFF))
    staged: list[bool] = []

    def broken_guard(plan, selection):
        staged.append((staging_path(out) / ".base" / "base.parquet").is_file())
        raise RuntimeError("guard failed")

    monkeypatch.setattr(mix_run, "guard_stage", broken_guard)
    with pytest.raises(RuntimeError, match="guard failed"):
        run_mix(MixConfig(runs=[run], out=out, base=str(base), overwrite=True, spread=OFF))
    assert staged == [True]  # the staging folder was in use when the step failed ...
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.jsonl", "m"]  # ... and is gone, as is the lock
    assert read_meta(out).created_at == first.created_at


def test_staging_for_clears_a_leftover_and_removes_a_failed_build(tmp_path: Path):
    out = tmp_path / "out"
    staging_path(out).mkdir()
    (staging_path(out) / "stale.txt").write_text("from an interrupted job")
    with pytest.raises(ConfigError), staging_for(out) as staging:
        assert not staging.exists()  # the leftover is cleared; the job makes the folder when it writes
        staging.mkdir()
        (staging / "half.txt").write_text("half")
        raise ConfigError("failed half-way")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("old", ["folder", "empty", "file", "none"])
def test_swap_in_replaces_whatever_is_there(tmp_path: Path, old: str):
    out = tmp_path / "out"
    if old == "folder":
        out.mkdir()
        (out / "old.txt").write_text("old")
    elif old == "empty":
        out.mkdir()
    elif old == "file":
        out.write_text("a file")
    staging = staging_path(out)
    staging.mkdir()
    (staging / "new.txt").write_text("new")
    swap_in(staging, out)
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and [p.name for p in out.iterdir()] == ["new.txt"]


def _mixture_with_taxonomy(folder: Path, taxonomy: Path | None, recorded_hash: str) -> Path:
    folder.mkdir(parents=True)
    config = {"taxonomy": None if taxonomy is None else str(taxonomy)}
    write_meta(folder, MixtureMeta(recipe={"name": "r"}, seed=0, splits={}, provenance={
        "config": config, "taxonomy": {"name": "t", "version": "1", "hash": recorded_hash},
    }))
    return folder


def test_heatmap_taxonomy_is_the_one_the_source_recorded(tmp_path: Path):
    own = tmp_path / "taxonomy"
    shutil.copytree(resource_dir("taxonomy"), own)
    data = yaml.safe_load((own / "domains.yaml").read_text(encoding="utf-8"))
    data["domains"].reverse()  # the same domains in another order: another hash, another heatmap order
    (own / "domains.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    changed = load_taxonomy(own)
    shipped = load_taxonomy()
    assert taxonomy_hash(changed) != taxonomy_hash(shipped)

    recorded = _mixture_with_taxonomy(tmp_path / "a", own, taxonomy_hash(changed))
    found = source_taxonomy(PublishConfig(source=recorded, local=tmp_path / "hub-a"))
    assert found is not None and [d.id for d in found.domains] == [d.id for d in changed.domains] != [d.id for d in shipped.domains]

    shipped_run = _mixture_with_taxonomy(tmp_path / "b", None, taxonomy_hash(shipped))
    found = source_taxonomy(PublishConfig(source=shipped_run, local=tmp_path / "hub-b"))
    assert found is not None and taxonomy_hash(found) == taxonomy_hash(shipped)

    gone = _mixture_with_taxonomy(tmp_path / "c", tmp_path / "deleted", taxonomy_hash(changed))
    assert source_taxonomy(PublishConfig(source=gone, local=tmp_path / "hub-c")) is None
    moved_on = _mixture_with_taxonomy(tmp_path / "d", None, taxonomy_hash(changed))  # shipped one is not it
    assert source_taxonomy(PublishConfig(source=moved_on, local=tmp_path / "hub-d")) is None


def test_run_source_taxonomy_from_its_manifest(run: Path, tmp_path: Path):
    folder = tmp_path / "run"
    shutil.copytree(run, folder)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest.setdefault("config", {})["taxonomy"] = None
    manifest["provenance"]["taxonomy_hash"] = taxonomy_hash(load_taxonomy())
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    found = source_taxonomy(PublishConfig(source=folder, local=tmp_path / "hub"))
    assert found is not None and taxonomy_hash(found) == manifest["provenance"]["taxonomy_hash"]
    manifest["provenance"]["taxonomy_hash"] = "0" * 16
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert source_taxonomy(PublishConfig(source=folder, local=tmp_path / "hub")) is None
