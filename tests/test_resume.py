"""A crashed (``kill -9``) or interrupted (Ctrl-C) ``scenario-forge generate`` costs only the work in flight.

The CLI runs the Prefect flow with the fake backend (a delay per batch, every request logged with
its process id) and its own temporary Prefect server. Once some shards are done we kill it, then
rerun the same command against the session's Prefect server and check: finished shards are not
regenerated (the rerun asks the model for exactly the unfinished shards' requests), the data has
no duplicate ids, every parquet file reads, the manifest's accounting adds up, and no process the
first run started is left behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest
from helpers import fake_config
from prefect_server import shared_server

from scenario_forge.backends.factory import get_backend
from scenario_forge.config import BackendConfig
from scenario_forge.generation.run import plan_run, run_generate_direct
from scenario_forge.schema import read_rejects, read_scenarios

pytestmark = pytest.mark.slow

CLI = str(Path(sys.executable).with_name("scenario-forge"))
N, SHARD_SIZE = 12, 2
SPEC = "delay=0.15,log={log}"  # ~2 s per shard: several are done, several not, when we strike


def _cmd(out: Path, log: Path) -> list[str]:
    return [
        CLI, "generate", "--backend", "fake", "--model", SPEC.format(log=log), "--domain", "health",
        "--n", str(N), "--shard-size", str(SHARD_SIZE), "--no-curate", "--out", str(out),
        "--orchestrator", "prefect",  # resume through Prefect (the default orchestrator is direct)
    ]


def _done_shards(out: Path) -> set[str]:
    return {p.name.removesuffix(".done.json") for p in out.glob("*/shards/*.done.json")}


def _log(log: Path) -> list[tuple[int, str]]:
    return [(int(pid), rid) for pid, rid in (line.split("\t") for line in log.read_text().splitlines())]


def _requests_by_seed(tmp_path: Path, log: Path) -> dict[str, set[str]]:
    """What an uninterrupted run asks the model for, per scenario seed (ids do not depend on timing)."""
    ref_log = tmp_path / "reference.log"
    cfg = fake_config(tmp_path / "reference", n=N, shard_size=SHARD_SIZE, backend=BackendConfig(kind="fake", model=f"log={ref_log}"))
    run_generate_direct(cfg)
    get_backend(cfg.backend).close()
    by_seed: dict[str, set[str]] = defaultdict(set)
    for _, rid in _log(ref_log):
        by_seed[rid.split(":", 1)[0]].add(rid)
    return by_seed


@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_interrupted_run_resumes_without_regenerating_or_losing_data(tmp_path: Path, sig):
    server = shared_server()
    out, log = tmp_path / "out", tmp_path / "calls.log"
    cmd = _cmd(out, log)
    # First run: no PREFECT_API_URL, so the CLI starts its own temporary server (on the session
    # server's already-migrated database, to start faster).
    env = server.env()
    del env["PREFECT_API_URL"]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 200
        while len(_done_shards(out)) < 2:
            assert first.poll() is None, f"finished too early: {first.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, "no shard finished in time"
            time.sleep(0.05)
        started = psutil.Process(first.pid).children(recursive=True)
        assert any("uvicorn" in " ".join(p.cmdline()) for p in started), "the CLI did not start its own server"
        os.killpg(first.pid, sig)  # the whole process group, as a terminal's Ctrl-C does
        _, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    if sig == signal.SIGINT:
        assert first.returncode == 130, stderr[-3000:]
        # progress (the bar's last frame, and "progress: ..." lines when stderr is not a terminal) aside
        progress = re.compile(r"^(progress: |curation: )")
        lines = [line for line in stderr.splitlines() if line.strip() and not progress.match(line)]
        assert lines == ["error: interrupted; finished shards are on disk and a rerun resumes from them"], stderr[-3000:]
    else:
        assert first.returncode == -signal.SIGKILL
    # The temporary server went with the CLI, whether it was interrupted or killed.
    psutil.wait_procs(started, timeout=15)
    assert not [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]

    done_before = _done_shards(out)
    first_requests = _log(log)
    (root,) = [p for p in out.iterdir() if p.is_dir()]
    assert 2 <= len(done_before) < N // SHARD_SIZE and not (root / "manifest.json").exists()

    # Rerun, against the session's server this time.
    again = subprocess.run(cmd, env=server.env(), capture_output=True, text=True, timeout=200)
    assert again.returncode == 0, again.stderr[-3000:]

    cfg = fake_config(out, n=N, shard_size=SHARD_SIZE, backend=BackendConfig(kind="fake", model=SPEC.format(log=log)))
    shards = plan_run(cfg).shards
    seeds_of = {s.name: {seed.id for seed in s.seeds} for s in shards}
    finished_seeds = set().union(*(seeds_of[name] for name in done_before))
    rerun = [rid for pid, rid in _log(log)[len(first_requests):]]
    assert {pid for pid, _ in _log(log)[len(first_requests):]}.isdisjoint({first.pid})
    assert not [rid for rid in rerun if rid.split(":", 1)[0] in finished_seeds], "a finished shard was regenerated"
    expected = _requests_by_seed(tmp_path, log)
    remaining = set().union(*(seeds_of[s.name] for s in shards if s.name not in done_before))
    assert sorted(rerun) == sorted(rid for seed in remaining for rid in expected[seed])

    manifest = json.loads((root / "manifest.json").read_text())
    c = manifest["counts"]
    assert c["planned"] == N == c["kept"] + c["rejected"] + c["deduplicated"]
    assert manifest["timings"]["shards_resumed"] == len(done_before)
    for path in root.rglob("*.parquet"):
        pq.read_table(path)  # every file reads: nothing half-written
    kept = read_scenarios(root / "scenarios.parquet")
    ids = [s.id for s in kept] + [r.id for r in read_rejects(root / "rejects.parquet")]
    assert len(kept) == c["kept"] and len(ids) == len(set(ids)) == N
    assert set(ids) == {seed.id for s in shards for seed in s.seeds}
