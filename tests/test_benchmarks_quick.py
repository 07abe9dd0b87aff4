"""Every benchmark's ``--quick`` mode, run with its quick-size target asserted (the targets are in
each script's docstring; the full-size figures are in the README's Performance table).

Each script exits 1 when a target of the size it ran at is missed, so the exit status is the
target check; the printed PASS lines and the JSON figures are checked as well, so a script that
stops checking cannot pass here. Benchmarks added by other issues (bench_lint, bench_grading,
bench_refusal, ...) carry their own quick tests.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

BENCH = REPO / "benchmarks"


def run_bench(name: str, *args: str, timeout: float = 280, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(BENCH / name), *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env, check=False
    )
    assert proc.returncode == 0, f"{name} {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.timeout(120)
def test_bench_plan_quick():
    out = run_bench("bench_plan.py", "--quick", timeout=100).stdout
    assert "plan(10,000 seeds" in out
    assert re.search(r"max - min = [01] ", out), out
    assert out.count("-> PASS") == 2 and "FAIL" not in out, out


@pytest.mark.timeout(300)
def test_bench_mix_quick():
    out = run_bench("bench_mix.py", "--quick").stdout
    for case in ("floor", "stream", "shuffle"):
        assert f"\n{case} " in out
    assert "mix 200,000 base rows in <= 10 CPU s" in out and "peak RSS <= 1 GiB" in out and "(quick-size target)" in out
    assert out.count("-> PASS") == 2, out


@pytest.mark.timeout(600)
def test_bench_dedup_quick(tmp_path: Path):
    out = tmp_path / "bench.json"
    printed = run_bench("bench_dedup.py", "--quick", "--json", str(out), timeout=580).stdout
    assert printed.count("target (quick):") == 5 and printed.count("-> PASS") == 5, printed
    figures = json.loads(out.read_text())
    assert figures["scale"]["n"] == 10_000 and figures["scale"]["recall"] >= 0.98 and figures["scale"]["wall_s"] <= 10
    assert figures["subsample"]["precision"] == 1.0 and figures["subsample"]["recall"] >= 0.95
    options = [row["option"] for row in figures["embedding"]["rows"]]
    assert options[0].startswith("default") and all(row["texts_per_s"] > 0 for row in figures["embedding"]["rows"])


@pytest.mark.timeout(120)
def test_bench_backends_quick_on_the_fake_backend(tmp_path: Path):
    """The harness (recording, replay, ratios) on the fake backend with a per-batch delay standing
    in for the model: the pipeline keeps that backend as busy as a straight replay does."""
    out = tmp_path / "figures.json"
    printed = run_bench("bench_backends.py", "--backend", "fake", "--quick", "--json", str(out), timeout=100).stdout
    assert "pipeline / direct (completion tok/s)" in printed and "-> PASS" in printed, printed
    figures = json.loads(out.read_text())
    pipe = figures["embedded_pipeline"]
    assert pipe["planned"] == 4 and pipe["batches"] > 0 and pipe["pipeline_tok_s"] > 0 and pipe["direct_tok_s"] > 0
    assert figures["quick_target"]["met"] and figures["quick_target"]["ratio"] >= figures["quick_target"]["target"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bench_orchestration_quick():
    from prefect_server import shared_server

    server = shared_server()
    out = run_bench("bench_orchestration.py", "--quick", env=server.env(), timeout=280).stdout
    assert "direct run" in out and "prefect run" in out
    assert "quick-size target <=" in out and ": met)" in out, out


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_bench_fleet_quick():
    """Issue 18 item 3: (a) one simulated server, (b) 4 servers vs 1 (scaling efficiency, quick-size
    target asserted by the exit status), (c) client CPU; the 4 servers share the requests."""
    out = run_bench("bench_fleet.py", "--quick", timeout=380).stdout
    assert "capacity used:" in out and "(c) client CPU at 4 servers:" in out, out
    kept = int(out.split("kept ", 1)[1].split("/", 1)[0])
    eff = float(out.split("scaling efficiency: ", 1)[1].split("= ", 1)[1].split(" ", 1)[0])
    assert kept > 0 and eff >= 0.3 and "target >= 0.3: met" in out, out
    per_server = [int(x) for x in out.split("4 servers:", 1)[1].split("requests per server ", 1)[1].splitlines()[0].split(", ")]
    assert len(per_server) == 4 and min(per_server) >= 0.15 * sum(per_server), per_server  # the router spreads them
