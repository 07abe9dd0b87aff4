"""The lint benchmark at quick size, with its targets asserted: recall on unusable rows, false
rejection of usable rows (on the hand-labelled set) and scenarios per second on one core."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

LABELLED = REPO / "labelled" / "lint_scenarios.jsonl"


@pytest.mark.skipif(not LABELLED.is_file(), reason="labelled/lint_scenarios.jsonl (the hand-labelled lint set) is absent")
@pytest.mark.timeout(300)
def test_bench_lint_quick_meets_its_targets(tmp_path: Path):
    # Speed: the benchmark reports the one-core figure against the 10,000 scenarios/s target (README,
    # "Trusting the data and the rewards"). Here, at quick size and on whatever else a 2-core CI machine
    # runs, a floor catches a pathological slowdown: ~5,800-6,700/s was measured with the machine's two
    # cores loaded by five other jobs (load average ~7), and 4,860/s at load average 11-12 with the 22 detectors
    # (full size), so 3,000/s leaves room for a slower loaded runner.
    speed_target = 3_000
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_lint.py"), "--quick", "--json", str(out),
         "--speed-target", str(speed_target)],
        capture_output=True, text=True, timeout=280, check=False,
    )
    assert out.is_file(), proc.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["rows"] >= 150 and figures["unusable"] > 0 and figures["usable"] > 0
    assert figures["recall_unusable"] >= 0.95, figures["misses"]
    assert figures["false_rejection"] <= 0.05, figures["misses"]
    detectors = figures["detectors"]
    assert detectors["rubric_leak"]["gold"] > 0 and detectors["rubric_leak"]["recall"] is not None
    assert all(d["precision"] is None or 0 <= d["precision"] <= 1 for d in detectors.values())
    assert figures["speed"]["lint_per_s"] >= speed_target, figures["speed"]
    assert proc.returncode == 0 and "targets met" in proc.stdout, proc.stdout[-2000:]
