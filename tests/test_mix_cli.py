"""``scenario-forge mix`` on the command line: a summary on success; one error line, a non-zero exit
and nothing lost on bad input; and the Prefect flow wiring the same stages."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from mix_data import HashEmbedder, grid, write_run
from typer.testing import CliRunner

from scenario_forge.cli.main import app
from scenario_forge.mixing import guard
from scenario_forge.mixture import read_meta

runner = CliRunner()


@pytest.fixture(autouse=True)
def fake_embedder(monkeypatch):
    monkeypatch.setattr(guard, "make_embedder", lambda model, cache_dir: HashEmbedder())


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return write_run(tmp_path_factory.mktemp("runs"), grid(1, domains=["health", "science", "business"]))


def invoke(*args: str):
    return runner.invoke(app, ["mix", *args])


def one_error_line(result) -> str:
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_mix_prints_a_summary(run: Path, tmp_path: Path):
    result = invoke(str(run), "--recipe", "paper-5pct", "--out", str(tmp_path / "m"), "--no-spread-check", "--seed", "2")
    assert result.exit_code == 0, result.output
    meta = read_meta(tmp_path / "m")
    assert meta.seed == 2 and meta.spread_check["enabled"] is False
    text = " ".join(result.output.split())
    assert "mixture paper-5pct" in text and "= 1/20, exact: True" in text
    assert "spread check: off" in text and "contamination guard: 0 train/held-out" in text


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--recipe", "paper-6pct"], "unknown recipe 'paper-6pct'"),
        (["--recipe", "RECIPE:beneficial_ratio: 0.05\nbeneficial: {domains: [astrology]}"], "unknown domain 'astrology'"),
        (["--recipe", "RECIPE:beneficial_ratio: 0.05\nheldout: {traits: [telepathy]}"], "unknown trait 'telepathy'"),
        (["--recipe", "RECIPE:beneficial_ratio: 1.2"], "beneficial_ratio: Input should be less than 1"),
        (["--recipe", "RECIPE:beneficial_ratio: 0"], "beneficial_ratio: Input should be greater than 0"),
        (["--recipe", "RECIPE:beneficial_ratio: 0.05\npersistence: {harmful: EMPTY, helpful: good-medical}"], "is empty"),
        (["--spread-k", "1"], "needs at least 2 answers per scenario (got 1)"),
        (["--spread-k", "0"], "needs at least 2 answers per scenario (got 0)"),
        (["--base", "BASE"], "has no prompt column 'prompt'"),
        (["--total", "100000"], "asks for 5000 beneficial rows (total 100000 x 1/20) but only"),
        (["--total", "1001"], "does not split exactly at ratio 1/20"),
        (["--heldout-domain", "narnia"], "unknown domain 'narnia'"),
        (["--threshold", "1.5"], "threshold: Input should be less than or equal to 1"),
        (["--orchestrator", "cron"], "--orchestrator must be"),
    ],
)
def test_bad_input_is_one_line(run: Path, tmp_path: Path, args, needle):
    empty = tmp_path / "empty-persona.yaml"
    empty.write_text("")
    base = tmp_path / "base.parquet"
    pl.DataFrame({"question": ["q"] * 5}).write_parquet(base)
    resolved = []
    for a in args:
        if a.startswith("RECIPE:"):
            recipe = tmp_path / "recipe.yaml"
            recipe.write_text("name: custom\n" + a.removeprefix("RECIPE:").replace("EMPTY", str(empty)) + "\n")
            a = str(recipe)
        resolved.append(str(base) if a == "BASE" else a)
    out = tmp_path / "m"
    result = invoke(str(run), "--out", str(out), *resolved)
    assert result.exit_code != 0
    assert needle in one_error_line(result)
    assert not out.exists() and not list(tmp_path.glob(".m.*"))


def test_missing_run_and_missing_out(tmp_path: Path, run: Path):
    result = invoke(str(tmp_path / "nope"), "--out", str(tmp_path / "m"))
    assert result.exit_code == 2 and "run not found" in one_error_line(result)
    result = invoke(str(tmp_path), "--out", str(tmp_path / "m"))
    assert result.exit_code == 2 and "is not a run folder (no scenarios.parquet)" in one_error_line(result)
    result = invoke(str(run))
    assert result.exit_code == 2 and "out: Field required" in one_error_line(result)


def test_existing_mixture_is_not_overwritten(run: Path, tmp_path: Path):
    out = tmp_path / "m"
    assert invoke(str(run), "--out", str(out), "--no-spread-check").exit_code == 0
    before = (out / "train.parquet").read_bytes()
    result = invoke(str(run), "--out", str(out), "--no-spread-check", "--seed", "9")
    assert result.exit_code == 2 and "pass --overwrite" in one_error_line(result)
    assert (out / "train.parquet").read_bytes() == before
    result = invoke(str(run), "--out", str(out), "--no-spread-check", "--seed", "9", "--overwrite")
    assert result.exit_code == 0 and read_meta(out).seed == 9


def test_config_file_and_flags(run: Path, tmp_path: Path):
    cfg = tmp_path / "mix.yaml"
    cfg.write_text(f"runs: [{run}]\nrecipe: health-only\nspread: {{enabled: false}}\nseed: 4\n")
    result = invoke("--config", str(cfg), "--out", str(tmp_path / "m"), "--seed", "5")
    assert result.exit_code == 0, result.output
    meta = read_meta(tmp_path / "m")
    assert meta.recipe["name"] == "health-only" and meta.seed == 5


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_prefect_flows(run: Path, tmp_path: Path):
    """The mix and publish flows run their jobs' own step lists, one task per step named as the step
    (what the direct runner runs), and return the jobs' records."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.testing.utilities import prefect_test_harness

    from flows.mix import mix_flow
    from flows.publish import publish_flow
    from scenario_forge.mixing.config import MixConfig
    from scenario_forge.mixing.run import MIX_STEPS
    from scenario_forge.mixture import MixtureMeta
    from scenario_forge.publishing.build import PublishResult
    from scenario_forge.publishing.config import PublishConfig
    from scenario_forge.publishing.run import PUBLISH_STEPS
    from scenario_forge.steps import step_names

    def task_names(client, state, expected: int) -> list[str]:
        """The flow run's task names in start order. Prefect 3 records task runs from client events,
        a moment after the flow returns: wait for ``expected`` of them, up to 30 s."""
        import time

        deadline = time.monotonic() + 30
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
            if len(runs) >= expected or time.monotonic() > deadline:
                return [r.name.rsplit("-", 1)[0] for r in sorted(runs, key=lambda r: r.expected_start_time or r.created)]
            time.sleep(0.5)

    with prefect_test_harness(server_startup_timeout=90):
        state = mix_flow(MixConfig(runs=[run], out=tmp_path / "m", spread={"enabled": False}), return_state=True)
        meta = state.result()
        published = publish_flow(PublishConfig(source=tmp_path / "m", local=tmp_path / "hub", exports=["verl"]), return_state=True)
        summary = published.result()
        with get_client(sync_client=True) as client:
            mix_tasks = task_names(client, state, len(MIX_STEPS))
            publish_tasks = task_names(client, published, len(PUBLISH_STEPS))
    assert mix_tasks == step_names(MIX_STEPS) == ["plan-mixture", "spread-check", "select-rows", "contamination-guard", "write-mixture"]
    assert publish_tasks == step_names(PUBLISH_STEPS) == ["build-hub-folder", "push-to-hub"]
    written = read_meta(tmp_path / "m")
    assert isinstance(meta, MixtureMeta) and (meta.splits, meta.counts) == (written.splits, written.counts) and meta.ratio["exact"]
    assert isinstance(summary, PublishResult) and summary.configs["mixture"]["train"] == meta.splits["train"]
    assert (tmp_path / "hub" / "README.md").is_file()
