"""Each job's steps declared once, as data: the direct runner, the lists each job declares, and the
taxonomy a generate job plans from (loaded once, by its config's validator)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from helpers import fake_config

from scenario_forge import progress
from scenario_forge.curation.run import CURATE_STEPS
from scenario_forge.curation.stages import CURATION_STEPS
from scenario_forge.evaluation.run import EVAL_STEPS
from scenario_forge.generation.run import generate_steps, run_generate_direct
from scenario_forge.steps import ForEach, Step, on, run_steps, step_names
from scenario_forge.taxonomy import loader
from scenario_forge.training.trainer import TRAIN_STEPS

CURATION = ["quality-gates", "quality-judge", "sign-checks", "embed", "near-duplicates"]


@dataclass(frozen=True)
class Tally:
    seen: tuple[str, ...] = ()


def _add(name: str) -> Step[Tally]:
    return Step(name, lambda s: replace(s, seen=(*s.seen, name)))


def test_the_direct_runner_runs_steps_in_order_and_reports_each():
    events: list[str] = []
    stop = progress.listen(lambda event, data: events.append(data["name"]) if event == "step" else None)
    try:
        fan = ForEach(
            "parts",
            parts=lambda s: ["c", "a", "b"],
            run=lambda p: p.upper(),
            merge=lambda s, rs: replace(s, seen=(*s.seen, *rs)),
            workers=lambda s: 3,
        )
        out = run_steps([_add("one"), fan, _add("two")], Tally())
    finally:
        stop()
    assert out.seen == ("one", "C", "A", "B", "two")  # parts merge in part order, whatever finished first
    assert events == ["one", "parts", "two"]


def test_a_failing_part_fails_the_step_after_the_other_parts_end():
    finished: list[int] = []

    def work(i: int) -> int:
        if i == 0:
            raise ValueError("part 0 failed")
        time.sleep(0.05)
        finished.append(i)
        return i

    fan: ForEach[Tally, int, int] = ForEach("parts", parts=lambda s: [0, 1, 2, 3], run=work, merge=lambda s, rs: s,
                                            workers=lambda s: 2)
    with pytest.raises(ValueError, match="part 0 failed"):
        run_steps([fan], Tally())
    assert sorted(finished) == [1, 2, 3]


def test_steps_lift_into_a_larger_state_with_their_names_and_tags():
    inner = [Step("inc", lambda n: n + 1, tags=("llm",)), Step("double", lambda n: n * 2)]
    lifted = on(inner, lambda pair: pair[0], lambda pair, n: (n, pair[1]))
    assert step_names(lifted) == ["inc", "double"] and lifted[0].tags == ("llm",)
    assert run_steps(lifted, (3, "kept")) == (8, "kept")


def test_each_job_declares_its_steps_once(tmp_path: Path):
    assert step_names(CURATION_STEPS) == CURATION
    assert [s.tags for s in CURATION_STEPS] == [(), ("llm",), ("llm",), (), ()]
    assert step_names(CURATE_STEPS) == ["load-runs", *CURATION, "write-runs"]
    curated = generate_steps(fake_config(tmp_path, curate=True))
    # curation inside generate is the same steps, not one hidden task
    assert step_names(curated) == ["prepare-run", "generate-shard", "merge-shards", *CURATION, "finalize-run"]
    assert step_names(generate_steps(fake_config(tmp_path))) == ["prepare-run", "generate-shard", "merge-shards", "finalize-run"]
    assert step_names(EVAL_STEPS) == ["prepare-eval", "evaluate-split", "eval-report"]
    assert step_names(TRAIN_STEPS) == ["prepare-training", "grpo-train"]


def test_the_config_stores_what_it_resolved(tmp_path: Path):
    cfg = fake_config(tmp_path, domains=["medicine"], traits=["epistemic_humility"])
    sel = cfg.selection
    assert sel.domains == ["health"] and sel.traits == [("truthfulness", "epistemic_humility")]
    assert sel.hash == loader.taxonomy_hash(sel.taxonomy)
    assert cfg.selection is sel  # stored, not resolved again
    assert "selection" not in cfg.model_dump()  # not a field: manifests and flow parameters are unchanged
    moved = cfg.model_copy(update={"domains": ["law"]})
    assert moved.selection.domains == ["law_ethics"]  # a copy with other names resolves its own


def test_a_generate_job_loads_its_taxonomy_once(tmp_path: Path, monkeypatch):
    loads: list[Path] = []
    real = loader._load

    def counting(root: Path):
        loads.append(root)
        return real(root)

    monkeypatch.setattr(loader, "_load", counting)
    cfg = fake_config(tmp_path, n=6, shard_size=2, shard_workers=2)
    assert len(loads) == 1  # the validator
    manifest = run_generate_direct(cfg)
    assert manifest.counts.planned == 6 and manifest.timings["shards"] == 3
    assert len(loads) == 1  # planning and the three shards used what the validator loaded


def test_the_direct_runner_runs_a_fan_out_on_its_workers():
    lock = threading.Lock()
    running, peak = 0, 0

    def work(i: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return i

    fan: ForEach[Tally, int, int] = ForEach("parts", parts=lambda s: list(range(6)), run=work, merge=lambda s, rs: s,
                                            workers=lambda s: 2)
    run_steps([fan], Tally())
    assert peak == 2


def test_a_list_that_does_not_fit_together_fails_before_any_step_runs(tmp_path: Path):
    from helpers import FAKE

    from scenario_forge.curation.stages import start_batch
    from scenario_forge.steps import StepOrderError, check_steps

    ran: list[str] = []
    embed, dedup = CURATION_STEPS[3], CURATION_STEPS[4]
    spy = Step("spy", lambda b: ran.append("spy") or b)
    batch = start_batch(tmp_path, ["r"], ["r"], [], fake_config(tmp_path).curation, FAKE)
    check_steps(CURATION_STEPS, batch)  # the declared order fits
    with pytest.raises(StepOrderError, match="step 'near-duplicates' needs vectors"):
        run_steps([spy, dedup, embed], batch)
    assert ran == []  # nothing ran: the check comes first
    liar = Step("liar", lambda s: s, gives=("doubled",))
    with pytest.raises(StepOrderError, match="step 'liar' did not give doubled"):
        run_steps([liar], Tally())


def test_each_job_list_fits_its_starting_state(tmp_path: Path):
    from scenario_forge.curation.config import CurateConfig
    from scenario_forge.curation.run import CurateJob
    from scenario_forge.evaluation.run import EvalJob
    from scenario_forge.generation.run import GenerateJob, plan_run
    from scenario_forge.steps import check_steps
    from scenario_forge.training.trainer import TrainJob

    for curate in (True, False):
        cfg = fake_config(tmp_path, curate=curate)
        check_steps(generate_steps(cfg), GenerateJob(plan_run(cfg)))
    check_steps(CURATE_STEPS, CurateJob(CurateConfig.model_construct(runs=[tmp_path])))
    check_steps(EVAL_STEPS, EvalJob(config=None))  # type: ignore[arg-type]  # only the fields set matter
    check_steps(TRAIN_STEPS, TrainJob(config=None))  # type: ignore[arg-type]
