"""The generate flow against a real Prefect server: artifacts, resume, bad parameters, Dask scale-out.

All tests share one ``prefect server start`` (see ``prefect_server.py``): starting it costs 5-25 s
once per session; each flow run then costs about a second of orchestration.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from helpers import FAKE, fake_config
from prefect_server import PrefectServer, shared_server

from scenario_forge.backends.factory import use_backend
from scenario_forge.backends.fake import FakeBackend
from scenario_forge.config import BackendConfig
from scenario_forge.manifest import Manifest
from scenario_forge.orchestration import TaskRunnerConfig
from scenario_forge.orchestration.artifacts import artifact_key
from scenario_forge.schema import read_scenarios

pytestmark = pytest.mark.slow


@pytest.fixture
def server(monkeypatch) -> Iterator[PrefectServer]:
    """Flows in this process (and processes it starts) report to the session's server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    srv = shared_server()
    monkeypatch.setenv("PREFECT_API_URL", srv.api_url)
    with temporary_settings(updates={PREFECT_API_URL: srv.api_url}):
        yield srv


def _artifacts(flow_run_id) -> dict[str, object]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in found if a.key}


@pytest.mark.timeout(180)
def test_generate_flow_leaves_artifacts_and_resumes(server, tmp_path: Path, monkeypatch):
    import prefect.artifacts

    from flows.generate import generate_flow

    updates: list[float] = []
    real_update = prefect.artifacts.update_progress_artifact

    def spy(artifact_id, progress, *args, **kwargs):
        updates.append(round(progress, 1))
        return real_update(artifact_id, progress, *args, **kwargs)

    monkeypatch.setattr(prefect.artifacts, "update_progress_artifact", spy)
    cfg = fake_config(tmp_path, n=12, shard_size=4, domains=["health", "science"])
    backend = FakeBackend()
    with use_backend(FAKE, backend):
        state = generate_flow(cfg, return_state=True)
        assert updates == [33.3, 66.7, 100.0]  # once per shard, as each finishes
        assert state.is_completed(), state.message
        typed = state.result()
        assert isinstance(typed, Manifest)  # the flow returns the job's record
        manifest = typed.model_dump(mode="json")
        calls = backend.calls
        again = generate_flow(cfg, return_state=True)
    assert again.is_completed() and backend.calls == calls > 0  # every shard resumed: no new request
    assert again.result().timings["shards_resumed"] == 3 == manifest["timings"]["shards"]
    c = manifest["counts"]
    assert c["planned"] == 12 == c["kept"] + c["rejected"] + c["deduplicated"]

    keys = {kind: artifact_key("generate", manifest["run_id"], kind) for kind in ("progress", "counts", "report")}
    found = _artifacts(state.state_details.flow_run_id)
    assert set(keys.values()) <= set(found)
    progress = found[keys["progress"]]
    assert progress.type == "progress" and float(progress.data) == 100.0
    assert "3/3 shards done" in progress.description
    table = found[keys["counts"]]
    rows = json.loads(table.data)
    assert table.type == "table" and [r["domain"] for r in rows] == ["health", "science"]
    assert sum(int(r["total"].split("/")[0]) for r in rows) == c["kept"]
    assert sum(int(r["total"].split("/")[1]) for r in rows) == 12
    report = found[keys["report"]]
    assert report.type == "markdown" and f"# Run `{manifest['run_id']}`" in report.data
    # The rerun's artifacts are new versions under the same keys, attached to the second flow run.
    resumed = _artifacts(again.state_details.flow_run_id)
    assert set(keys.values()) <= set(resumed)
    assert "3 resumed" in resumed[keys["progress"]].description


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ({"domains": ["astrology"]}, "config: Value error, unknown domain 'astrology'"),
        ({"n": 0}, "config.n: Input should be greater than 0"),
        ({"n": -3, "domains": ["health"]}, "config.n: Input should be greater than 0"),
    ],
)
def test_invalid_parameters_fail_before_any_model_loads(server, tmp_path: Path, config, needle):
    from flows.generate import generate_flow

    backend = FakeBackend()
    params = {**config, "out": str(tmp_path / "out"), "backend": {"kind": "fake"}}
    with use_backend(FAKE, backend):
        state = generate_flow(config=params, return_state=True)
    assert state.is_failed()
    assert "Validation of flow parameters failed" in state.message and needle in state.message
    assert backend.calls == 0 and not (tmp_path / "out").exists()


@pytest.mark.timeout(240)
def test_dask_cluster_produces_the_same_data_as_threads(server, tmp_path: Path):
    """Shards on a 2-process Dask LocalCluster: same scenarios (ids and content) as the thread runner."""
    from flows.generate import generate_flow

    log = tmp_path / "calls.log"
    backend = BackendConfig(kind="fake", model=f"log={log}")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    results = {}
    for name, runner in [
        ("threads", TaskRunnerConfig()),
        ("dask", TaskRunnerConfig(kind="dask", workers=2, processes=True)),
    ]:
        lines_before = len(log.read_text().splitlines()) if log.exists() else 0
        cfg = fake_config(tmp_path / name, n=16, shard_size=2, domains=["health", "law"], backend=backend)
        state = generate_flow(cfg, runner, return_state=True)
        assert state.is_completed(), state.message
        results[name] = read_scenarios(cfg.out / state.result().run_id / "scenarios.parquet")
        pids = {line.split("\t")[0] for line in log.read_text().splitlines()[lines_before:]}
        if name == "threads":
            assert pids == {str(os.getpid())}
        else:  # the shards really ran in the cluster's worker processes
            assert len(pids) >= 2 and str(os.getpid()) not in pids
    threads, dask = results["threads"], results["dask"]
    assert len(threads) == 16 and [s.id for s in threads] == [s.id for s in dask]
    assert [s.model_dump() for s in threads] == [s.model_dump() for s in dask]
    # The cluster was torn down with the flow run: no worker process outlives it (multiprocessing's
    # resource tracker is one per interpreter, started for the spawned workers, and exits with us).
    left = [
        p
        for p in psutil.Process().children(recursive=True)
        if p.pid not in before
        and p.is_running()
        and p.status() != psutil.STATUS_ZOMBIE
        and "resource_tracker" not in " ".join(p.cmdline())
    ]
    assert not left, [p.cmdline() for p in left]


@pytest.mark.timeout(300)
def test_end_to_end_flow_generates_then_mixes(server, tmp_path: Path):
    """generate -> mix as subflows of one run; the mixture is built from the generated run."""
    from flows.end_to_end import end_to_end_flow
    from scenario_forge.orchestration.pipeline import PipelineConfig

    config = PipelineConfig(
        generate=fake_config(tmp_path, n=48, domains=[]),
        mix={"recipe": "paper-5pct", "spread": {"enabled": False}, "allow_smaller": True},
    )
    with use_backend(FAKE, FakeBackend()):
        state = end_to_end_flow(config, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    run_id = result.generate.run_id
    mixture = tmp_path / "out" / f"{run_id}-mixture"
    assert (mixture / "mixture.json").is_file() and result.train_eval is None and result.publish is None
    assert result.mix.recipe["name"] == "paper-5pct"
    assert json.loads((mixture / "mixture.json").read_text())["recipe"]["name"] == "paper-5pct"
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        parent = client.read_flow_run(state.state_details.flow_run_id)
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent.id]))
        )
    assert sorted(client_run.state.type.value for client_run in children) == ["COMPLETED", "COMPLETED"]


@pytest.mark.timeout(120)
def test_a_failing_shard_fails_the_run_after_the_others_are_saved(server, tmp_path: Path):
    """A shard whose model calls raise fails the flow run with that error (what the CLI prints as
    one line), but only after every other shard has finished and saved: a rerun redoes one shard."""
    from flows.generate import generate_flow
    from scenario_forge.errors import BackendError
    from scenario_forge.generation.run import plan_run
    from scenario_forge.orchestration.local_api import run_flow_from_cli

    cfg = fake_config(tmp_path, n=8, shard_size=2)
    doomed = {seed.id for seed in plan_run(cfg).shards[1].seeds}

    class DyingServer(FakeBackend):
        def _generate(self, requests):
            if any(r.id.split(":", 1)[0] in doomed for r in requests):
                raise BackendError("the model server went away")
            return super()._generate(requests)

    no_retry = TaskRunnerConfig(retries=0)  # retries: test_a_shard_that_fails_once_is_retried_after_the_delay
    with use_backend(FAKE, DyingServer()), pytest.raises(BackendError, match="^the model server went away$"):
        run_flow_from_cli(generate_flow, config=cfg, runner=no_retry)
    (root,) = (tmp_path / "out").iterdir()
    done = sorted(p.name.split("-")[0] for p in root.glob("shards/*.done.json"))
    assert done == ["00000", "00002", "00003"] and not (root / "manifest.json").exists()
    with use_backend(FAKE, FakeBackend()) as healthy:
        manifest = run_flow_from_cli(generate_flow, config=cfg)
    assert manifest.timings["shards_resumed"] == 3 and manifest.counts.kept == 8
    assert {r.id.split(":", 1)[0] for r in healthy.requests} == doomed


def _task_run_names(flow_run_id, expected: int) -> list[str]:
    """The flow run's task run names (the server records task runs from client events, a moment
    after the flow returns: wait for ``expected`` of them, up to 30 s)."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + 30
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            if len(runs) >= expected or time.monotonic() > deadline:
                return [r.name for r in runs]
            time.sleep(0.5)


@pytest.mark.timeout(180)
def test_the_flows_run_the_steps_the_direct_runner_runs(server, tmp_path: Path):
    """generate (with curation) and curate: one Prefect task per declared step, named as the step,
    one per shard; the same list the CLI's direct runner runs."""
    from flows.curate import curate_flow
    from flows.generate import generate_flow
    from scenario_forge.curation.config import CurateConfig
    from scenario_forge.curation.run import CURATE_STEPS
    from scenario_forge.generation.run import generate_steps
    from scenario_forge.steps import step_names

    cfg = fake_config(tmp_path, n=4, shard_size=2, curate=True, curation={"judge": False})
    with use_backend(FAKE, FakeBackend()):
        state = generate_flow(cfg, return_state=True)
        assert state.is_completed(), state.message
        steps = generate_steps(cfg)
        names = _task_run_names(state.state_details.flow_run_id, len(steps) - 1 + 2)  # two shard tasks
        shards = sorted(n for n in names if n.startswith("shard-"))
        tasks = {n.rsplit("-", 1)[0] for n in names if not n.startswith("shard-")}
        assert len(shards) == 2 and tasks == set(step_names(steps)) - {"generate-shard"}
        assert "quality-gates" in tasks and "near-duplicates" in tasks  # curation is its own tasks
        again = curate_flow(
            CurateConfig(runs=[cfg.out / state.result().run_id], curation={"judge": False}), return_state=True
        )
    assert again.is_completed(), again.message
    assert isinstance(again.result()[0], Manifest)
    names = _task_run_names(again.state_details.flow_run_id, len(CURATE_STEPS))
    assert {n.rsplit("-", 1)[0] for n in names} == set(step_names(CURATE_STEPS))


@pytest.mark.timeout(180)
def test_a_shard_that_fails_once_is_retried_after_the_delay(server, tmp_path: Path, monkeypatch):
    """A shard task that fails (a lost worker) is retried after ``retry_delay_s`` and the run
    completes with every scenario; a ConfigError (a retry would repeat it) is not retried."""
    import time

    from flows.generate import generate_flow
    from scenario_forge.errors import ConfigError
    from scenario_forge.generation import run as generation_run

    real = generation_run.run_shard
    attempts: dict[int, list[float]] = {}
    failure: list[Exception] = [RuntimeError("the worker was lost")]

    def flaky(run, shard):
        attempts.setdefault(shard.index, []).append(time.monotonic())
        if shard.index == 1 and len(attempts[1]) == 1:
            raise failure[0]
        return real(run, shard)

    monkeypatch.setattr(generation_run, "run_shard", flaky)
    runner = TaskRunnerConfig(retries=2, retry_delay_s=1.0)
    cfg = fake_config(tmp_path, n=6, shard_size=2)
    with use_backend(FAKE, FakeBackend()):
        state = generate_flow(cfg, runner, return_state=True)
    assert state.is_completed(), state.message
    manifest = state.result()
    assert {i: len(t) for i, t in attempts.items()} == {0: 1, 1: 2, 2: 1}
    assert attempts[1][1] - attempts[1][0] >= 1.0  # the retry waited for the delay
    c = manifest.counts
    assert c.planned == 6 == c.kept + c.rejected + c.deduplicated and manifest.timings["shards_resumed"] == 0

    attempts.clear()
    failure[0] = ConfigError("a bad template")
    with use_backend(FAKE, FakeBackend()):
        failed = generate_flow(fake_config(tmp_path / "again", n=6, shard_size=2), runner, return_state=True)
    assert failed.is_failed() and "a bad template" in failed.message
    assert len(attempts[1]) == 1  # not retried


@pytest.mark.timeout(120)
def test_steps_log_through_the_run_logger(server):
    """Each step's start and end (and each part's) reach the Prefect API as the run's logs: a
    deployment run shows its stages in the UI."""
    import logging
    import time

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    from scenario_forge.orchestration.prefect_steps import run_steps_as_tasks
    from scenario_forge.steps import ForEach, Step

    steps = [
        Step("double", lambda n: n * 2),
        ForEach(
            "add",
            parts=lambda n: [1, 2],
            run=lambda p: p,
            merge=lambda n, rs: n + sum(rs),
            part_name=lambda p: f"part-{p}",
        ),
    ]

    @flow(name="logged-steps")
    def job(start: int) -> int:
        return run_steps_as_tasks(steps, start)

    # The test session keeps Prefect at WARNING (conftest); a user's default level is INFO.
    loggers = [logging.getLogger(name) for name in ("prefect.flow_runs", "prefect.task_runs")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.INFO)
    try:
        state = job(1, return_state=True)
        APILogWorker.drain_all(timeout=10)
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
    assert state.result() == 5
    expected = {
        (True, "double: started"),
        (True, "double: done"),  # inside the step's task
        (False, "add: started"),
        (False, "add: done"),  # the fan-out as a whole, in the flow
        (True, "part-1: started"),
        (True, "part-1: done"),
        (True, "part-2: started"),
        (True, "part-2: done"),
    }
    deadline = time.monotonic() + 30
    with get_client(sync_client=True) as client:
        while True:
            logs = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id]))
            )
            seen = {(log.task_run_id is not None, log.message.split(" in ")[0]) for log in logs}
            if expected <= seen or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert expected <= seen, sorted(seen)
