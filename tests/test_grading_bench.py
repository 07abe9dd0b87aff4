"""The grading benchmark runs (``--quick``: 16 criteria on the embedded judge) and meets its target."""

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
    assert "\nbatched " in out and "\none-at-a-time " in out and "criteria/s" in out, out + proc.stderr
    assert proc.returncode == 0 and "PASS" in out, out + proc.stderr
