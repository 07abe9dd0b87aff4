"""The curation benchmark at smoke size, so the script cannot rot (the full run is manual)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO


@pytest.mark.timeout(600)
def test_bench_dedup_quick(tmp_path: Path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_dedup.py"), "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=580, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "scale targets met" in proc.stdout
    figures = json.loads(out.read_text())
    assert figures["scale"]["recall"] >= 0.98 and figures["scale"]["peak_rss_gib"] > 0
    assert figures["subsample"]["precision"] == 1.0 and figures["subsample"]["recall"] >= 0.95
    options = [row["option"] for row in figures["embedding"]["rows"]]
    assert options[0].startswith("default") and all(row["texts_per_s"] > 0 for row in figures["embedding"]["rows"])
