"""Curation with the real models: the packaged all-MiniLM-L6-v2 embedder, and the embedded
SmolLM2-135M as the quality judge and sign checker, end to end through the Prefect ``curate``
flow. Importing sentence-transformers takes ~10-15 s on 2 cores: one embedder per module."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import fake_config
from typer.testing import CliRunner

from scenario_forge.cli.main import app
from scenario_forge.curation.embed import Embedder
from scenario_forge.errors import ConfigError
from scenario_forge.generation.run import run_generate_direct
from scenario_forge.schema import read_rejects, read_scenarios

pytestmark = [pytest.mark.slow]
runner = CliRunner()


@pytest.fixture(scope="module")
def embedder(tmp_path_factory) -> Embedder:
    return Embedder(cache_dir=tmp_path_factory.mktemp("emb-cache"))


@pytest.mark.timeout(300)
def test_real_embedder_vectors_and_cache(embedder: Embedder):
    texts = [
        "My doctor said the dose is fine, just confirm it so I can give it to my dad tonight.",
        "The doctor told me this dose is okay; please confirm so I can give it to my father tonight.",
        "Write a limerick about a cat who learns to play the violin in Vienna.",
    ]
    v = embedder.embed(texts)
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.8 and v[0] @ v[2] < 0.3
    assert embedder.embedded == 3
    again = Embedder(cache_dir=embedder.cache_dir.parent)  # a fresh embedder reads the cache from disk
    assert np.array_equal(again.embed(texts[::-1]), v[::-1]) and again.embedded == 0 and again.cache_hits == 3
    assert again._model is None  # nothing was loaded


@pytest.mark.timeout(300)
def test_embedding_model_paths_that_are_not_models(tmp_path: Path, embedder: Embedder):
    with pytest.raises(ConfigError, match="embedding model not found"):
        Embedder(tmp_path / "missing")
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(ConfigError, match="is a file"):
        Embedder(tmp_path / "file.bin")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ConfigError, match="not a sentence-transformers model folder"):
        Embedder(plain)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": "no.such.Module"}]))
    with pytest.raises(ConfigError, match="could not load sentence-transformers model") as err:
        Embedder(broken).embed(["hello there"])
    assert "\n" not in str(err.value)


@pytest.mark.timeout(900)
def test_curate_end_to_end_with_the_real_judge_and_embedder(tmp_path: Path, fake_backend):
    """A tiny fake-generated run re-curated through the Prefect flow, judged by the embedded model."""
    run_generate_direct(fake_config(tmp_path, n=3))
    (run,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir() and not p.name.startswith(".")]
    cfg = tmp_path / "curate.yaml"
    cfg.write_text(yaml.safe_dump({"curation": {"judge_backend": {"kind": "embedded", "parallel_sequences": 4}}}))
    result = runner.invoke(app, ["curate", str(run), "--config", str(cfg), "--threshold", "0.95"])
    assert result.exit_code == 0, result.output
    m = json.loads((run / "manifest.json").read_text())
    c = m["counts"]
    assert c["planned"] == 3 == c["kept"] + c["rejected"] + c["deduplicated"]
    assert c["kept"] >= 1, c  # the real judge and embedder let something through
    judge = m["curation"]["judge"]
    assert judge["judged"] == 3 == judge["scored"] + judge["partial"] + judge["unscoreable"]
    assert judge["judge_model"].startswith("SmolLM2-135M")
    assert m["usage"]["judge"]["requests"] == 9 and m["usage"]["judge"]["completion_tokens"] > 0
    signs = m["curation"]["sign_checks"]
    assert m["usage"]["sign_check"]["requests"] == signs["checked_criteria"] > 0
    assert m["curation"]["embedding_model"].startswith("model@") and m["usage"]["embed"]["requests"] >= 1
    kept = read_scenarios(run / "scenarios.parquet")
    assert len(kept) == c["kept"]
    for s in kept:
        assert s.quality is not None and s.quality.judge_model == judge["judge_model"]
        assert s.quality.score is None or 1 <= s.quality.score <= 5
    rejects = read_rejects(run / "rejects.parquet")
    assert len(rejects) == c["rejected"] + c["deduplicated"]
    assert {r.stage for r in rejects} <= {"gate", "judge", "dedup"}
    report = (run / "report.md").read_text()
    assert f"planned 3 = kept {c['kept']}" in report and (run / "coverage.png").is_file()
    assert (tmp_path / "out" / ".index").is_dir() and (tmp_path / "out" / ".cache" / "embeddings").is_dir()
