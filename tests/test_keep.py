"""``generate --keep N --max-attempts M``: replacement rounds in the cells that fell short (fake backend)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import FAKE, fake_config
from typer.testing import CliRunner

from scenario_forge.backends.base import ChatRequest
from scenario_forge.backends.factory import use_backend
from scenario_forge.backends.fake import FakeBackend, default_responder
from scenario_forge.cli.main import app
from scenario_forge.generation.keep import allocate, replacement_seeds, seed_cell
from scenario_forge.generation.run import plan_run, run_generate_direct
from scenario_forge.schema import read_rejects, read_scenarios


def _doomed(seed_id: str) -> bool:
    """About a third of all seeds, chosen by their id (so replacements are doomed at the same rate)."""
    return int(seed_id[-2:], 16) % 3 == 0


def _failing(request: ChatRequest) -> str | None:
    return None if _doomed(request.id.split(":", 1)[0]) else default_responder(request)


def _cfg(tmp_path: Path, **kw):
    base = {"domains": ["health", "art"], "traits": ["truthfulness", "corrigibility"], "shard_size": 4, "path": "short"}
    return fake_config(tmp_path, **{**base, **kw})


def _manifest(cfg) -> dict:
    return json.loads((plan_run(cfg).root / "manifest.json").read_text())


def test_keep_replaces_rejects_in_their_cells_until_n_are_kept(tmp_path: Path):
    cfg = _cfg(tmp_path, keep=12, n=12, max_attempts=60)
    first = plan_run(cfg)
    assert sum(_doomed(s.id) for shard in first.shards for s in shard.seeds) > 0  # the test has something to replace
    target = Counter(seed_cell(cfg, s) for shard in first.shards for s in shard.seeds)
    with use_backend(FAKE, FakeBackend(responder=_failing)):
        run_generate_direct(cfg)
    kept = read_scenarios(first.root / "scenarios.parquet")
    rejects = read_rejects(first.root / "rejects.parquet")
    manifest = _manifest(cfg)
    keep = manifest["keep"]
    assert len(kept) == 12 and keep["met"] and keep["kept"] == 12 and "reason" not in keep
    # coverage: every cell has exactly its round-0 count of kept scenarios
    assert Counter((s.domain, s.trait, None) for s in kept) == target
    # accounting covers every attempt: planned = attempted = kept + rejected, over all rounds
    counts = manifest["counts"]
    assert counts["planned"] == keep["attempted"] == len(kept) + len(rejects) == sum(r["planned"] for r in keep["rounds"])
    assert len(keep["rounds"]) >= 2 and keep["rounds"][0]["planned"] == 12
    assert all(r["kept"] + r["rejected"] == r["planned"] for r in keep["rounds"])
    assert keep["rounds"][-1]["kept_total"] == 12
    # every rejected seed was replaced in its own cell (a replacement's cell is a cell that lost one)
    assert all(_doomed(r.id) for r in rejects)
    assert len({s.id for s in kept} | {r.id for r in rejects}) == counts["planned"]  # no id twice


def test_keep_stops_at_the_attempt_budget_and_says_why(tmp_path: Path):
    cfg = _cfg(tmp_path, keep=6, n=6, max_attempts=9)
    with use_backend(FAKE, FakeBackend(responder=lambda r: None)):
        run_generate_direct(cfg)
    keep = _manifest(cfg)["keep"]
    assert keep["kept"] == 0 and not keep["met"] and keep["attempted"] == 9
    assert [r["planned"] for r in keep["rounds"]] == [6, 3]
    assert "attempt budget (--max-attempts 9) is spent" in keep["reason"]


def test_replacements_are_deterministic_and_stay_in_short_cells(tmp_path: Path):
    cfg = _cfg(tmp_path, keep=8, n=8, max_attempts=40)
    seeds = [s for shard in plan_run(cfg).shards for s in shard.seeds]
    kept_ids = {s.id for s in seeds[2:]}  # the first two were "rejected"
    a = replacement_seeds(cfg, seeds, kept_ids, 1)
    b = replacement_seeds(cfg, seeds, kept_ids, 1)
    assert a == b and len(a) == 2
    assert Counter(seed_cell(cfg, s) for s in a) == Counter(seed_cell(cfg, s) for s in seeds[:2])
    assert [s.index for s in a] == [8, 9] and not {s.id for s in a} & {s.id for s in seeds}
    assert replacement_seeds(cfg, seeds, kept_ids, 2) != a  # another round draws other seeds


def test_allocation_fills_the_largest_deficits_first():
    deficits = {("a", "t", None): 3, ("b", "t", None): 1, ("c", "t", None): 2}
    assert allocate(deficits, 6, 0, 1) == deficits
    assert allocate(deficits, 3, 0, 1) == {("a", "t", None): 2, ("c", "t", None): 1}
    assert allocate(deficits, 0, 0, 1) == {}


def test_keep_run_resumes_without_regenerating(tmp_path: Path):
    cfg = _cfg(tmp_path, keep=8, n=8, max_attempts=30)
    with use_backend(FAKE, FakeBackend(responder=_failing)):
        run_generate_direct(cfg)
    before = _manifest(cfg)["keep"]
    again = FakeBackend(responder=_failing)
    with use_backend(FAKE, again):
        run_generate_direct(cfg)
    assert again.requests == []  # every shard of every round was read back
    after = _manifest(cfg)["keep"]
    assert after["rounds"] == before["rounds"] and after["kept"] == 8
    assert pq.read_table(plan_run(cfg).root / "scenarios.parquet").num_rows == 8


runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--keep", "0"], "error: --keep: Input should be greater than or equal to 1"),
        (["--keep", "5", "--max-attempts", "4"], "error: --keep 5 is more than --max-attempts 4 allows"),
        (["--max-attempts", "4"], "error: --max-attempts applies only with --keep N"),
        (["--keep", "5", "--n", "7"], "error: --n 7 and --keep 5 disagree"),
    ],
)
def test_bad_keep_flags_fail_in_one_line_writing_nothing(tmp_path: Path, args: list[str], message: str):
    out = tmp_path / "out"
    result = runner.invoke(app, ["generate", "--backend", "fake", "--no-curate", "--out", str(out), *args])
    assert result.exit_code != 0
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(message), result.output
    assert not out.exists()


def test_cli_keep_short_of_target_exits_non_zero_with_the_reason(tmp_path: Path):
    out = tmp_path / "out"
    with use_backend(FAKE, FakeBackend(responder=_failing)):
        result = runner.invoke(app, [
            "generate", "--backend", "fake", "--no-curate", "--out", str(out), "-d", "health", "-t", "truthfulness",
            "--keep", "6", "--max-attempts", "6", "--path", "short",
        ])
    manifest = json.loads(next(out.glob("*/manifest.json")).read_text())
    assert manifest["counts"]["rejected"] > 0 and not manifest["keep"]["met"]  # _failing dooms one of these six
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert result.exit_code == 1 and len(errors) == 1 and "of --keep 6" in errors[0], result.output
