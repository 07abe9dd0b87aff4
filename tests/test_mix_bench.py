"""The mixing benchmark runs (``--quick``: 200,000 base rows) and prints its time and memory figures."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import REPO


@pytest.mark.timeout(300)
def test_bench_mix_quick():
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_mix.py"), "--quick"], capture_output=True, text=True, timeout=280, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for case in ("floor", "stream", "shuffle"):
        assert f"\n{case} " in out
    assert "200,000 base rows in <= 30 s" in out and "peak RSS <= 2 GiB" in out and out.count("PASS") == 2
