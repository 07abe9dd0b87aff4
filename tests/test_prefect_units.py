"""Orchestration pieces that need no Prefect server: keys, tables, reports, runner choice, call logs."""

from __future__ import annotations

import importlib.util
import os
import re
import socket
from pathlib import Path

import pytest
from helpers import fake_config
from pydantic import ValidationError

from scenario_forge.backends.base import ChatRequest
from scenario_forge.backends.fake import FakeBackend
from scenario_forge.config import SamplingParams
from scenario_forge.errors import BackendError, MissingExtraError
from scenario_forge.generation.run import plan_run, run_generate_direct, shard_parts
from scenario_forge.orchestration import TaskRunnerConfig
from scenario_forge.orchestration.artifacts import artifact_key, counts_table, run_report_markdown
from scenario_forge.orchestration.runners import SPARE_THREADS, build_task_runner
from scenario_forge.records import Message

KEY = re.compile(r"^[a-z0-9-]+$")


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("generate", "health-n20-s0-ab12cd", "progress"), "generate-health-n20-s0-ab12cd-progress"),
        (("generate", "law_ethics-n5-s1-FFee00", "counts"), "generate-law-ethics-n5-s1-ffee00-counts"),
        (("generate", "My Run.v2__x", "report"), "generate-my-run-v2-x-report"),
    ],
)
def test_artifact_keys_are_valid_and_stable(parts, expected):
    key = artifact_key(*parts)
    assert key == expected and KEY.match(key)
    assert artifact_key(*parts) == key


def test_counts_table_is_kept_over_planned_per_domain_and_trait(tmp_path: Path):
    run = plan_run(fake_config(tmp_path, n=24, domains=["health", "science"], shard_size=5))
    seeds = [seed for shard in run.shards for seed in shard.seeds]
    kept = [(s.domain, s.trait) for s in seeds[::2]]  # every other scenario kept
    rows = counts_table(run.shards, kept)
    assert [r["domain"] for r in rows] == ["health", "science"]
    planned_total = kept_total = 0
    for row in rows:
        k, p = (int(x) for x in row["total"].split("/"))
        kept_total, planned_total = kept_total + k, planned_total + p
        cells = [v for c, v in row.items() if c not in ("domain", "total") and v]
        assert sum(int(v.split("/")[0]) for v in cells) == k
        assert sum(int(v.split("/")[1]) for v in cells) == p
    assert (kept_total, planned_total) == (len(kept), 24)
    traits = {s.trait for s in seeds}
    assert set(rows[0]) == {"domain", "total", *traits}


def test_run_report_lists_counts_reasons_usage_and_provenance(tmp_path: Path):
    calls = {"n": 0}

    def flaky(request: ChatRequest) -> str | None:
        from scenario_forge.backends.fake import default_responder

        calls["n"] += 1
        return None if request.id.startswith(f"{first_seed}:") else default_responder(request)

    cfg = fake_config(tmp_path, n=6)
    first_seed = plan_run(cfg).shards[0].seeds[0].id
    from scenario_forge.backends.factory import use_backend

    with use_backend(cfg.backend, FakeBackend(flaky)):
        manifest = run_generate_direct(cfg).model_dump(mode="json")
    md = run_report_markdown(manifest)
    c = manifest["counts"]
    assert c["rejected"] >= 1 and calls["n"] > 0
    assert f"# Run `{manifest['run_id']}`" in md
    assert f"| {c['planned']} | {c['kept']} | {c['rejected']} | {c['deduplicated']} |" in md
    for reason in c["rejected_by_reason"]:
        assert f"| {reason} |" in md
    for stage in manifest["usage"]:
        assert f"| {stage} |" in md
    assert manifest["provenance"]["model"] in md and manifest["provenance"]["taxonomy_hash"] in md


def test_task_runner_choice():
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    threads = build_task_runner(TaskRunnerConfig(), shard_workers=3)
    assert isinstance(threads, ThreadPoolTaskRunner) and threads._max_workers == 3 + SPARE_THREADS
    local = build_task_runner(TaskRunnerConfig(kind="dask", workers=4, processes=False), shard_workers=2)
    assert isinstance(local, DaskTaskRunner)
    assert local.cluster_kwargs["n_workers"] == 4 and local.cluster_kwargs["threads_per_worker"] == 2
    assert local.cluster_kwargs["processes"] is False
    remote = build_task_runner(TaskRunnerConfig(kind="dask", address="tcp://10.0.0.5:8786"), shard_workers=2)
    assert remote.address == "tcp://10.0.0.5:8786"
    with pytest.raises(ValidationError, match="runner.address is for the dask and ray runners"):
        TaskRunnerConfig(kind="threads", address="tcp://x:1")
    with pytest.raises(ValidationError):
        TaskRunnerConfig(kind="slurm")


def test_ray_runner_names_its_extra():
    cfg = TaskRunnerConfig(kind="ray", address="ray://head:10001")
    if importlib.util.find_spec("prefect_ray") is None:
        with pytest.raises(MissingExtraError, match=r"pip install 'scenario-forge\[ray\]'"):
            build_task_runner(cfg, shard_workers=2)
    else:  # pragma: no cover - only where the [ray] extra is installed
        assert type(build_task_runner(cfg, shard_workers=2)).__name__ == "RayTaskRunner"


def test_shard_task_inputs_stay_small(tmp_path: Path):
    from prefect.utilities.annotations import quote

    from scenario_forge.generation.run import SHARDS
    from scenario_forge.orchestration.prefect_steps import part_task

    run = plan_run(fake_config(tmp_path, n=200, shard_size=8))
    parts = shard_parts(run)
    assert [p.shard for p in parts] == run.shards  # each part carries its own shard's seeds
    light = parts[0].run
    assert all(p.run is light for p in parts)
    assert [(s.index, s.key) for s in light.shards] == [(s.index, s.key) for s in run.shards]
    assert all(not s.seeds for s in light.shards) and light.config == run.config
    assert len(light.model_dump_json()) < len(run.model_dump_json()) / 5
    shard = run.shards[7]
    assert parts[7].name == f"shard-00007-{shard.key[:8]}"
    # The shard step's Prefect task names each run after its part, quoted or not.
    task = part_task(SHARDS)
    assert task.name == "generate-shard" and task.tags == {"llm"}
    assert task.task_run_name(parameters={"work": quote(parts[7])}) == parts[7].name
    assert task.task_run_name(parameters={"work": parts[7]}) == parts[7].name


def test_fake_backend_call_log(tmp_path: Path):
    log = tmp_path / "calls.log"
    backend = FakeBackend.from_spec(f"delay=0.001,log={log}")
    sampling = SamplingParams()
    hello = [Message(role="user", content="Say hello.")]
    requests = [ChatRequest(id=f"seed{i}:brief:0", messages=hello, sampling=sampling) for i in range(3)]
    assert [g.ok for g in backend.generate(requests)] == [True] * 3
    backend.generate(requests[:1])
    lines = [line.split("\t") for line in log.read_text().splitlines()]
    assert [rid for _, rid in lines] == ["seed0:brief:0", "seed1:brief:0", "seed2:brief:0", "seed0:brief:0"]
    assert {pid for pid, _ in lines} == {str(os.getpid())}
    assert FakeBackend.from_spec("default").call_log is None
    with pytest.raises(BackendError, match="unknown option 'speed=3'"):
        FakeBackend.from_spec("speed=3")


def test_pipeline_options_fail_early_and_fill_in_inputs(tmp_path: Path):
    from scenario_forge.orchestration.pipeline import PipelineConfig

    gen = fake_config(tmp_path)
    with pytest.raises(ValidationError, match="unknown recipe 'nonexistent'"):
        PipelineConfig(generate=gen, mix={"recipe": "nonexistent"})
    with pytest.raises(ValidationError, match="evaluate evaluates the trained model"):
        PipelineConfig(generate=gen, evaluate={})
    with pytest.raises(ValidationError, match="say where to publish"):
        PipelineConfig(generate=gen, publish={})
    with pytest.raises(ValidationError, match="num_generations"):
        PipelineConfig(generate=gen, train={"batch_size": 3, "num_generations": 2})
    cfg = PipelineConfig(generate=gen, mix={"recipe": "paper-5pct", "seed": 7}, train={"max_steps": 2})
    run = tmp_path / "out" / "run-1"
    run.mkdir(parents=True)
    with pytest.raises(ValidationError, match="is not a run folder"):
        cfg.mix_config(run)  # the real MixConfig's checks apply once the input exists
    (run / "scenarios.parquet").write_bytes(b"")
    mix = cfg.mix_config(run)
    assert mix.runs == [run] and mix.out == tmp_path / "out" / "run-1-mixture" and mix.seed == 7
    train = cfg.train_config(mix.out)
    assert train.mixture == mix.out and train.max_steps == 2 and cfg.eval_config(mix.out) is None


def test_unreachable_prefect_api_is_one_clear_line(tmp_path: Path, monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from typer.testing import CliRunner

    from scenario_forge.cli.main import app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    url = f"http://127.0.0.1:{port}/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    with temporary_settings(updates={PREFECT_API_URL: url}):
        result = CliRunner().invoke(
            app,
            ["generate", "--backend", "fake", "--n", "2", "--out", str(tmp_path / "out"), "--orchestrator", "prefect"],
        )
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert f"the Prefect API at {url} is not reachable (ConnectError" in errors[0]
    assert "--orchestrator direct" in errors[0]


def test_shard_slots_keep_a_threads_runner_to_shard_workers_at_a_time():
    """The threads runner has spare threads for Prefect's API calls; the slots bound the shards,
    and once the run is interrupted a shard still waiting for a slot does not start."""
    import threading
    from contextlib import nullcontext

    from scenario_forge.orchestration import slots as shards

    with shards.run_slots("run-x", 2, enabled=True) as slots:
        assert shards.shard_slot("run-x") is slots
        slots.__enter__()
        slots.__enter__()
        waiting: list[BaseException] = []

        def third() -> None:
            try:
                with slots:
                    waiting.append(AssertionError("started although the run was interrupted"))
            except RuntimeError as exc:
                waiting.append(exc)

        t = threading.Thread(target=third)
        t.start()
        t.join(0.5)
        assert t.is_alive() and not waiting  # a third shard waits for a slot
        slots.stop.set()  # Ctrl-C
        t.join(5)
        assert len(waiting) == 1 and isinstance(waiting[0], RuntimeError) and "interrupted" in str(waiting[0])
        slots.__exit__()
        slots.__exit__()
    assert isinstance(shards.shard_slot("run-x"), nullcontext)  # gone with the run; Dask/Ray hold nothing


def test_importing_the_flows_changes_no_settings():
    """Importing every flow module leaves the environment and Prefect's settings as they were
    (the temporary server's defaults go to that server only: ``local_api.TemporaryServer``)."""
    import json
    import subprocess
    import sys

    code = """
import json, os, sys
import polars  # sets its own allocator's _RJEM_MALLOC_CONF on import: a dependency's, not ours
before = dict(os.environ)
import prefect.settings
settings = prefect.settings.get_current_settings().model_dump_json()
import flows.curate, flows.end_to_end, flows.generate, flows.mix, flows.publish, flows.train_eval
changed = sorted(set(os.environ.items()) ^ set(before.items()))
same = prefect.settings.get_current_settings().model_dump_json() == settings
print(json.dumps({"changed": changed, "same_settings": same}))
"""
    repo = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}  # Prefect's own defaults
    out = subprocess.run(
        [sys.executable, "-c", code], check=False, cwd=repo, env=env, capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"changed": [], "same_settings": True}


def test_the_temporary_server_gets_its_defaults_without_touching_ours(monkeypatch):
    from scenario_forge.orchestration import local_api

    monkeypatch.delenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", raising=False)
    assert local_api.server_startup_timeout_s() == local_api.STARTUP_TIMEOUT_S == 90
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "30")
    assert local_api.server_startup_timeout_s() == 30  # the user's setting wins
    assert local_api.SERVER_ENV_DEFAULTS == {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def test_the_direct_runner_logs_each_step_and_part_to_the_stdlib_logger(caplog):
    from dataclasses import dataclass, replace

    from scenario_forge.steps import ForEach, Step, run_steps

    @dataclass(frozen=True)
    class Job:
        total: int

    steps = [
        Step("double", lambda j: replace(j, total=j.total * 2)),
        ForEach(
            "add",
            parts=lambda j: [1, 2],
            run=lambda p: p,
            merge=lambda j, rs: replace(j, total=j.total + sum(rs)),
            part_name=lambda p: f"part-{p}",
        ),
    ]
    with caplog.at_level("INFO", logger="scenario_forge.steps"):
        assert run_steps(steps, Job(1)).total == 5
    lines = [(r.name, r.getMessage().split(" in ")[0]) for r in caplog.records]
    assert lines == [
        ("scenario_forge.steps", "double: started"),
        ("scenario_forge.steps", "double: done"),
        ("scenario_forge.steps", "add: started"),
        ("scenario_forge.steps", "part-1: started"),
        ("scenario_forge.steps", "part-1: done"),
        ("scenario_forge.steps", "part-2: started"),
        ("scenario_forge.steps", "part-2: done"),
        ("scenario_forge.steps", "add: done"),
    ]


def test_a_failing_step_is_logged_with_its_time_and_raised(caplog):
    from scenario_forge.steps import Step, run_steps

    def boom(state: int) -> int:
        raise ValueError("no")

    with caplog.at_level("INFO", logger="scenario_forge.steps"), pytest.raises(ValueError, match="^no$"):
        run_steps([Step("boom", boom)], 1)
    assert caplog.records[-1].levelname == "WARNING"
    assert re.fullmatch(r"boom: failed after \d+\.\d\d s: ValueError", caplog.records[-1].getMessage())


def test_shard_tasks_retry_with_a_delay_except_what_a_retry_would_repeat():
    from prefect import task
    from prefect.states import Failed

    from scenario_forge.errors import AccountingError, ConfigError
    from scenario_forge.orchestration.shards import with_retries, worth_retrying
    from scenario_forge.orchestration.slots import ShardInterrupted

    assert (TaskRunnerConfig().retries, TaskRunnerConfig().retry_delay_s) == (2, 10.0)
    with pytest.raises(ValidationError):
        TaskRunnerConfig(retries=-1)
    shard = with_retries(task(name="generate-shard")(lambda work: work), TaskRunnerConfig(retries=3, retry_delay_s=1.5))
    assert (shard.name, shard.retries, shard.retry_delay_seconds) == ("generate-shard", 3, 1.5)
    assert shard.retry_condition_fn is worth_retrying

    def retried(exc: BaseException) -> bool:
        return worth_retrying(shard, None, Failed(data=exc))  # type: ignore[arg-type]

    assert retried(BackendError("the model server went away")) and retried(RuntimeError("out of memory"))
    assert not retried(ConfigError("unknown domain")) and not retried(AccountingError("lost rows"))
    assert not retried(MissingExtraError("vllm", "vllm", "the vllm backend"))
    assert not retried(ShardInterrupted("the run was interrupted before this shard started"))
