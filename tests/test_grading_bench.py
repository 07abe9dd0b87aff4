"""The grading benchmark runs (``--quick``: 16 criteria a side on the embedded judge) and reports both
rates and their ratio (the issue sets no speed target; the figures are in the README)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import REPO


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_bench_grading_quick():
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_grading.py"), "--quick"],
                          capture_output=True, text=True, timeout=580, check=False)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    rates = [float(line.split()[1]) for line in out.splitlines() if line.startswith(("batched ", "one-at-a-time "))]
    assert len(rates) == 2 and all(r > 0 for r in rates), out
    ratio = float(out.rsplit("ratio batched / one-at-a-time: ", 1)[1].split("x")[0])
    assert ratio == pytest.approx(rates[0] / rates[1], rel=0.05), out
