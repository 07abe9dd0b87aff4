"""Stage-level progress: the status a run reports (fake clock), a line at least every 30 s when
stdout is not a terminal, the rich bar on a terminal, and both through ``generate`` on the fake backend."""

from __future__ import annotations

import io
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console
from typer.testing import CliRunner

from scenario_forge import progress
from scenario_forge.cli import summary
from scenario_forge.cli.main import app
from scenario_forge.progress import RunProgress

pytestmark = pytest.mark.timeout(120)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def shard(planned: int, kept: int, resumed: bool = False) -> dict:
    return {"summary": SimpleNamespace(planned=planned, kept=kept, resumed=resumed), "index": 0, "total": 2}


def test_one_shard_reports_stage_requests_tokens_and_eta():
    clock = FakeClock()
    p = RunProgress(planned=40, planned_requests=400, clock=clock)
    assert p.line() == "planning: 0/40 scenarios done, 0/400 planned requests (0%), 0.0 tok/s, elapsed 0s"
    p.on_event("batch", {"stage": "brief", "requests": 160})
    clock.now += 60
    p.on_event("batch_done", {"stage": "brief", "requests": 160, "completion_tokens": 3000})
    p.on_event("batch", {"stage": "dialogue", "requests": 40})
    # 160 of 400 requests in 60 s: 240 left take 90 s more
    assert p.line() == "dialogue: 0/40 scenarios done, 160/400 planned requests (40%), 50.0 tok/s, elapsed 1m00s, ETA 1m30s"
    clock.now += 30  # inside a long batch nothing arrives, the clock still moves
    assert p.eta_s() == pytest.approx(90 / 160 * 240) and "elapsed 1m30s" in p.line()


def test_retries_beyond_the_plan_never_show_100_percent_before_the_end():
    clock = FakeClock()
    p = RunProgress(planned=10, planned_requests=100, clock=clock)
    clock.now += 10
    p.on_event("batch_done", {"stage": "rubric", "requests": 130, "completion_tokens": 10})
    assert p.fraction == 0.99 and p.eta_s() == 0
    p.on_event("shard_done", shard(10, 7))
    assert p.fraction == 1.0 and p.eta_s() is None and p.line().startswith("rubric: 10/10 scenarios done")


def test_resumed_shards_count_as_done_and_leave_the_plan():
    clock = FakeClock()
    p = RunProgress(planned=20, planned_requests=200, clock=clock)
    p.on_event("shard_done", shard(10, 10, resumed=True))
    assert p.done == 10 and p.requests_expected == 100 and p.fraction == 0.5
    clock.now += 20
    p.on_event("batch_done", {"stage": "brief", "requests": 50, "completion_tokens": 100})
    assert p.fraction == 0.5 and p.eta_s() == pytest.approx(20.0)
    p.on_event("curation", {"step": "judge: 20 scenarios"})
    assert p.stage == "curation: judge: 20 scenarios"


def test_a_job_without_a_plan_shows_its_step_and_time():
    clock = FakeClock()
    p = RunProgress(planned=0, clock=clock)
    p.on_event("curation", {"step": "quality gates"})
    clock.now += 5
    assert p.line() == "curation: quality gates, elapsed 5s"


def test_heartbeat_says_a_line_every_interval_and_not_more():
    clock, said = FakeClock(), []
    beat = summary.Heartbeat(lambda: f"t={clock.now:.0f}", said.append, interval=30, clock=clock)
    clock.now += 29.9
    assert not beat.tick() and said == []
    clock.now += 0.1
    assert beat.tick() and said == ["t=1030"]
    clock.now += 20
    beat.said()  # a shard line was printed: the next one is due 30 s after it
    clock.now += 29
    assert not beat.tick()
    clock.now += 1
    assert beat.tick() and said == ["t=1030", "t=1080"]


def test_not_a_terminal_prints_lines_while_one_long_batch_runs():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with summary.run_progress(console, planned=4, requests=40, interval=0.05):
        progress.report("batch", stage="dialogue", requests=4)
        time.sleep(0.6)  # one long batch: no events at all
        progress.report("shard_done", **shard(4, 3))
    lines = out.getvalue().splitlines()
    beats = [line for line in lines if line.startswith("progress: dialogue: 0/4 scenarios done")]
    assert len(beats) >= 3, lines
    assert "progress: shard 0 done (kept 3/4); dialogue: 4/4 scenarios done" in out.getvalue()
    progress.report("batch", stage="brief", requests=1)  # listener gone after the block
    time.sleep(0.2)
    assert out.getvalue().splitlines() == lines


def test_terminal_shows_a_bar_with_scenarios_rate_and_eta():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    with summary.run_progress(console, planned=4, requests=40) as state:
        progress.report("batch", stage="brief", requests=16)
        time.sleep(0.05)
        progress.report("batch_done", stage="brief", requests=16, completion_tokens=320)
        assert state.requests_done == 16
    text = out.getvalue()
    assert "brief" in text and "0/4 scenarios" in text and "tok/s" in text and "ETA" in text
    assert "progress:" not in text


def test_generate_prints_progress_lines_when_not_a_terminal(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(summary, "LINE_INTERVAL_S", 0.2)
    result = CliRunner().invoke(app, ["generate", "--backend", "fake", "--model", "delay=0.3", "--n", "2",
                                      "--no-curate", "--orchestrator", "direct", "--out", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("progress: ")]
    assert any(" 0/2 scenarios done, " in line and "planned requests" in line for line in lines), lines
    assert any(line.startswith("progress: shard 0 done (kept 2/2); ") for line in lines), lines
