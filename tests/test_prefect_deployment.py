"""The data engineer's path: a Prefect server, a process work pool, ``prefect deploy``, a worker,
and a deployment run with the embedded model; bad parameters are refused with a clear message.

Everything runs through the ``prefect`` CLI exactly as docs/prefect.md tells users to, against the
session's ``prefect server start`` on 127.0.0.1 and a free port. The worker is stopped (SIGTERM)
before the server, also when the test fails.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import REPO
from prefect_server import PREFECT, PrefectServer, prefect_cli, shared_server, spawn, stop, tail

from scenario_forge.schema import read_scenarios

pytestmark = pytest.mark.slow

POOL = "scenario-forge"


@pytest.fixture(scope="module")
def deployed() -> Iterator[PrefectServer]:
    """The pool created, every deployment in prefect.yaml deployed, and a worker polling the pool."""
    server = shared_server()
    created = prefect_cli(server, "work-pool", "create", POOL, "--type", "process", "--overwrite")
    assert created.returncode == 0, created.stdout + created.stderr
    deploy = prefect_cli(server, "--no-prompt", "deploy", "--all", timeout=300)
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
    assert "Deployment 'generate/generate' successfully created" in deploy.stdout
    log = server.home / "worker.log"
    worker = spawn(
        [PREFECT, "worker", "start", "--pool", POOL],
        server.env(SCENARIO_FORGE_PROJECT=str(REPO), PREFECT_WORKER_QUERY_SECONDS="2"),
        log,
    )
    server.children.append(worker)
    try:
        yield server
    finally:
        stop(worker)  # SIGTERM the worker before the server goes (at session end)
        server.children.remove(worker)
        print(f"worker exit code {worker.returncode}; its log ends:\n{tail(log, 1500)}")


def _flow_run(server: PrefectServer, name: str):
    """The newest flow run of deployment ``name`` (read through the Prefect client)."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.sorting import FlowRunSort

    with SyncPrefectClient(server.api_url) as client:
        deployment = client.read_deployment_by_name(name)
        runs = client.read_flow_runs(sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=5)
        return next(r for r in runs if r.deployment_id == deployment.id)


def _run_deployment(server: PrefectServer, params: dict, timeout: float):
    return prefect_cli(
        server, "deployment", "run", "generate/generate", "--params", json.dumps(params),
        "--watch", "--watch-timeout", str(int(timeout)), timeout=timeout + 60,
    )


@pytest.mark.timeout(900)
def test_generate_deployment_with_the_embedded_model(deployed: PrefectServer, tmp_path: Path):
    short = {"max_tokens": 48}
    params = {
        "config": {
            "domains": ["health"], "n": 2, "seed": 0, "out": str(tmp_path / "out"),
            "curate": False,
            "backend": {"kind": "embedded", "parallel_sequences": 4, "structured_output": "off"},
            # short answers keep a CPU-only CI quick; the run is about orchestration, not prose
            "sampling": {k: {**short, "stop": ["\n\n"]} for k in ("user_turn", "assistant_turn", "operator")}
            | {"brief": {**short, "stop": ["\n"]}, "rubric": {**short, "stop": ["\n"]}},
        },
    }
    t0 = time.monotonic()
    result = _run_deployment(deployed, params, timeout=780)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:] + tail(deployed.home / "worker.log")
    assert "Flow run finished successfully in 'Completed'" in result.stdout
    run = _flow_run(deployed, "generate/generate")
    assert run.state.is_completed() and run.parameters["config"]["n"] == 2
    (root,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    manifest = json.loads((root / "manifest.json").read_text())
    c = manifest["counts"]
    assert c["planned"] == 2 == c["kept"] + c["rejected"] + c["deduplicated"]
    assert c["kept"] >= 1, c  # a run that keeps nothing is not a pass
    assert manifest["provenance"]["model"].startswith("embedded:SmolLM2-135M-Instruct")
    assert manifest["usage"]["brief"]["completion_tokens"] > 0
    assert manifest["timings"]["shards"] == 1
    assert len(read_scenarios(root / "scenarios.parquet")) == c["kept"]
    print(f"deployment run with the embedded model: {time.monotonic() - t0:.1f} s")


@pytest.mark.timeout(300)
def test_deployment_refuses_bad_parameters(deployed: PrefectServer, tmp_path: Path):
    out = tmp_path / "out"
    # n <= 0 breaks the parameter schema: the server refuses to create the run at all.
    refused = _run_deployment(deployed, {"config": {"n": 0, "out": str(out)}}, timeout=60)
    assert refused.returncode != 0
    assert "Validation failed for field 'config.n'" in refused.stdout and "minimum of 0" in refused.stdout
    # An unknown domain passes the schema; the flow's own validation fails the run before any model loads.
    failed = _run_deployment(deployed, {"config": {"domains": ["astrology"], "out": str(out)}}, timeout=240)
    assert failed.returncode != 0 and "Flow run finished in state 'Failed'" in failed.stdout
    run = _flow_run(deployed, "generate/generate")
    assert run.state.is_failed() and run.parameters["config"]["domains"] == ["astrology"]
    assert "Validation of flow parameters failed" in run.state.message
    assert "unknown domain 'astrology'" in run.state.message
    assert not out.exists()
