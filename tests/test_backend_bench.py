"""``benchmarks/bench_backends.py --quick`` runs end to end on the fake backend (the harness itself:
recording, replay, ratios), in seconds."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from helpers import REPO


@pytest.mark.timeout(120)
def test_bench_backends_quick_on_the_fake_backend(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_backends", REPO / "benchmarks" / "bench_backends.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_backends"] = bench
    spec.loader.exec_module(bench)
    out = tmp_path / "figures.json"
    results = bench.main(["--backend", "fake", "--quick", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "pipeline / direct (completion tok/s)" in printed
    figures = results["embedded_pipeline"]
    assert figures["pipeline_tok_s"] > 0 and figures["direct_tok_s"] > 0 and figures["ratio"] > 0
    assert figures["planned"] == 4 and figures["batches"] > 0
    assert json.loads(out.read_text())["embedded_pipeline"]["planned"] == 4
