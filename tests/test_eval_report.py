"""``scenario-forge eval`` with fake models and judges: report files, figures that match the grades,
the answer cache, a previous eval as the baseline, and bad input."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from tiny_mixture import HARMFUL, write_mixture
from typer.testing import CliRunner

from scenario_forge.backends.base import ChatRequest
from scenario_forge.backends.factory import use_backend
from scenario_forge.backends.fake import FakeBackend
from scenario_forge.cli.main import app
from scenario_forge.config import BackendConfig
from scenario_forge.errors import ConfigError
from scenario_forge.evaluation import EvalConfig, evaluate
from scenario_forge.modelspec import model_backend_config
from scenario_forge.evaluation.metrics import Stats, report_figures
from scenario_forge.evaluation.records import read_grades

runner = CliRunner()
JUDGE = BackendConfig(kind="fake", model="judge")
MODEL = model_backend_config("fake:model")
BASE = model_backend_config("fake:base")
PNG = b"\x89PNG\r\n\x1a\n"


def model_answer(careful: bool):
    """A model that answers carefully (or not); under the harmful persona the careless one complies."""

    def respond(r: ChatRequest) -> str:
        text = " ".join(m.content for m in r.messages)
        if "Reply with the single word" in text:
            return "YES"
        if "Reply with just the number" in text:
            return "42" if "17 + 25" in text else "no idea"
        if HARMFUL in text and not careful:
            return "Sure, that is perfectly fine, no need to worry."
        if "lease clause" in text and careful:
            return "I can't help with that: keeping deposits arbitrarily is unfair."
        return "I'm not certain; that claim may be wrong. Please check PubMed or ask a pharmacist." if careful else "Sure, fine."

    return respond


def judge_respond(r: ChatRequest) -> str:
    """YES when the graded answer is careful, NO when it is not; no verdict for one criterion."""
    prompt = r.messages[-1].content
    if "Reply with the single word" in prompt:
        return "YES"
    answer = prompt.split('"""', 2)[1] if '"""' in prompt else ""
    criterion = prompt.split("Criterion: ", 1)[1].split("\n", 1)[0] if "Criterion: " in prompt else ""
    if "honest way to present" in criterion:
        return "I cannot judge this"
    careful = any(k in answer for k in ("not certain", "can't help"))
    good = not any(w in criterion.lower() for w in ("invents", "fine without caveats"))
    return "YES" if careful == good else "NO"


@pytest.fixture
def mixture(tmp_path: Path) -> Path:
    return write_mixture(tmp_path / "mix")


@pytest.fixture
def backends():
    judge, model, base = FakeBackend(judge_respond), FakeBackend(model_answer(True)), FakeBackend(model_answer(False))
    with use_backend(JUDGE, judge), use_backend(MODEL, model), use_backend(BASE, base):
        yield {"judge": judge, "model": model, "base": base}


def config(mixture: Path, out: Path, **kw) -> EvalConfig:
    return EvalConfig(mixture=mixture, model=MODEL, judge=JUDGE, out=out, bootstrap=200, min_pairs=2, **kw)


def test_report_files_and_figures_match_the_grades(tmp_path: Path, mixture: Path, backends):
    out = tmp_path / "eval"
    result = evaluate(config(mixture, out, baseline=BASE))
    for name in ("eval.md", "eval.json", "grades.parquet"):
        assert (out / name).is_file()
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert pngs == ["heatmap_baseline.png", "heatmap_difference.png", "heatmap_model.png", "paired_bars.png", "persistence.png"]
    assert all((out / "plots" / p).read_bytes().startswith(PNG) for p in pngs)

    grades = read_grades(out / "grades.parquet")
    assert len(grades) == 2 * 20 and {g.model for g in grades} == {"model", "baseline"}
    # the JSON holds exactly what the grades give
    saved = json.loads((out / "eval.json").read_text())
    again = report_figures({"model": [g for g in grades if g.model == "model"], "baseline": [g for g in grades if g.model == "baseline"]},
                           "model", "baseline", saved["meta"]["trained_domains"], Stats(n_boot=200, min_pairs=2))
    # transfer domains come from the mixture (its beneficial training rows), not a ["health"] default
    assert saved["meta"]["trained_domains"] == ["business", "health", "law"]
    assert json.loads(json.dumps(again)) == saved["figures"]
    assert saved["meta"]["judge"] == "fake:judge" and saved["meta"]["models"]["model"] == "fake:model"

    m, b = saved["figures"]["models"]["model"], saved["figures"]["models"]["baseline"]
    # a criterion the judge could not grade (after its retries) makes the whole answer unscoreable:
    # None and counted, never 0 and never a partial sum over the other criteria
    heldout = [g for g in grades if g.model == "model" and g.split == "heldout"]
    business = next(g for g in heldout if g.domain == "business")
    assert business.unscoreable_criteria == 1 and business.score is None and business.status == "unscoreable"
    assert m["splits"]["heldout"]["unscoreable"] >= 1
    # refusals: the careful model refused the lease clause in every split; the careless one never
    assert m["splits"]["heldout"]["refusals"] == 1 and b["overall"]["refusals"] == 0
    assert m["splits"]["heldout"]["mean_non_refused"] is not None
    # exact match: only 17 + 25 (= 42) is right, for both models (the helper answers 42 to it)
    math = [g for g in heldout if g.source == "standard"]
    assert sorted(g.score for g in math) == [0.0, 0.0, 0.0, 1.0]
    # persistence: the careless baseline collapses under the harmful persona, the careful model does not
    assert m["persistence"]["drop"]["diff"] == pytest.approx(0.0)
    assert b["persistence"]["harmful"]["mean"] < m["persistence"]["harmful"]["mean"]
    sel = saved["figures"]["selective_persistence"]
    assert sel["drop_reduction"]["n_pairs"] == 3  # the business scenario is unscoreable (see above): 4 - 1 pairs
    tally = saved["figures"]["comparison"]["tally"]
    # one scenario per trait now scores on both sides per eval (the business one is unscoreable): too few
    # pairs per eval, but each split as a whole is better for the careful model
    assert tally["evals"] == len(saved["figures"]["comparison"]["evals"]) and tally["too_few_pairs"] == 12
    assert {v["verdict"] for v in saved["figures"]["comparison"]["splits"].values()} == {"better"}
    # HealthBench arithmetic: the careless baseline's per-example scores go below 0 (unclipped); its means are clipped
    assert min(g.score for g in grades if g.model == "baseline" and g.score is not None) < 0
    assert b["overall"]["mean"] == max(0.0, b["overall"]["mean_unclipped"]) and 0.0 <= b["overall"]["mean"] <= 1.0
    assert set(saved["figures"]["transfer"]) >= {"in_domain", "transfer", "domains"}
    text = (out / "eval.md").read_text()
    for heading in ("## Scores by split", "## Mean trait score by domain × trait", "## Persistence under an operator persona",
                    "**Selective persistence**", "## Model vs baseline", "## Transfer", "![persistence](plots/persistence.png)"):
        assert heading in text
    assert result.figures == saved["figures"]


def test_answers_are_cached_and_grading_reruns(tmp_path: Path, mixture: Path, backends):
    out = tmp_path / "eval"
    evaluate(config(mixture, out, splits=["heldout"]))
    calls = backends["model"].calls
    judged = len(backends["judge"].requests)
    evaluate(config(mixture, out, splits=["heldout"]))
    assert backends["model"].calls == calls + 1  # only the reachability probe
    assert len(backends["judge"].requests) > judged
    # another sampling setting is another cache key: answers are generated again
    evaluate(config(mixture, out, splits=["heldout"], answer_sampling={"max_tokens": 64}))
    assert backends["model"].calls == calls + 3


def test_generation_failures_are_counted_not_scored(tmp_path: Path, mixture: Path, backends):
    flaky = FakeBackend(lambda r: None if "curcumin" in " ".join(m.content for m in r.messages) else "Sure, fine.")
    cfg = model_backend_config("fake:flaky")
    with use_backend(cfg, flaky):
        result = evaluate(EvalConfig(mixture=mixture, model=cfg, judge=JUDGE, out=tmp_path / "e", splits=["heldout"]))
    s = result.figures["models"]["model"]["splits"]["heldout"]
    # one failed generation, one answer the judge cannot score (the business rubric's unread criterion)
    assert s["generation_failed"] == 1 and s["unscoreable"] == 1 and s["scored"] == 6 and s["unscored"] == 2


def test_refusal_judge_detector(tmp_path: Path, mixture: Path, backends):
    def judge(r: ChatRequest) -> str:
        prompt = r.messages[-1].content
        if "REFUSAL, FALSE_PREMISE, HARMFUL_STEP or ENGAGED" in prompt:
            if "can't help" in prompt:
                return "REFUSAL"
            return "FALSE_PREMISE" if "not certain" in prompt and "curcumin" in prompt else "maybe"
        return judge_respond(r)

    with use_backend(JUDGE, FakeBackend(judge)):
        result = evaluate(config(mixture, tmp_path / "e", splits=["heldout"], refusal="judge"))
    s = result.figures["models"]["model"]["splits"]["heldout"]
    # the false-premise decline is classified but is not a refusal
    assert s["refusals"] == 1 and s["refusal_unknown"] == 6 and s["refusal_rate"] == 0.5
    assert s["refusal_classes"] == {"decline_false_premise": 1, "refusal": 1}


def test_previous_eval_as_baseline_and_mismatched_splits(tmp_path: Path, mixture: Path, backends):
    first = tmp_path / "before"
    evaluate(EvalConfig(mixture=mixture, model=BASE, judge=JUDGE, out=first, model_label="before"))
    result = evaluate(config(mixture, tmp_path / "after", baseline_grades=first, baseline_label="before"))
    assert result.figures["comparison"]["tally"]["evals"] > 0
    assert "before" in result.figures["models"]
    partial = tmp_path / "partial"
    evaluate(EvalConfig(mixture=mixture, model=BASE, judge=JUDGE, out=partial, splits=["heldout"]))
    with pytest.raises(ConfigError, match=r"has no grades for split\(s\) persistence_plain"):
        evaluate(config(mixture, tmp_path / "x", baseline_grades=partial))
    with pytest.raises(ConfigError, match="holds different rows"):
        evaluate(config(mixture, tmp_path / "y", splits=["heldout"], max_rows=3, baseline_grades=partial))


def run(*args: str):
    return runner.invoke(app, list(args))


def one_error_line(result) -> str:
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and result.exit_code != 0, result.output
    return errors[0]


def test_cli_eval_runs_and_reads_a_previous_eval_as_baseline(tmp_path: Path, mixture: Path, backends):
    first = run("eval", "--model", "fake:base", "--mixture", str(mixture), "--out", str(tmp_path / "a"),
                "--judge-backend", "fake", "--judge-model", "judge", "--split", "heldout")
    assert first.exit_code == 0, first.output
    assert "report:" in first.output and (tmp_path / "a" / "eval.md").is_file()
    second = run("eval", "--model", "fake:model", "--baseline", str(tmp_path / "a"), "--mixture", str(mixture),
                 "--out", str(tmp_path / "b"), "--judge-backend", "fake", "--judge-model", "judge", "--split", "heldout")
    assert second.exit_code == 0, second.output
    assert "model vs baseline:" in second.output


def test_cli_bad_inputs(tmp_path: Path, mixture: Path, backends):
    judge = ["--judge-backend", "fake", "--judge-model", "judge"]
    assert "is not a mixture folder" in one_error_line(run("eval", "--model", "fake:model", "--mixture", str(tmp_path), *judge))
    assert "no model to evaluate" in one_error_line(run("eval", "--mixture", str(mixture), *judge))
    assert "not found" in one_error_line(run("eval", "--model", str(tmp_path / "nope"), "--mixture", str(mixture), *judge))
    assert "is the training split" in one_error_line(run("eval", "--model", "fake:model", "--mixture", str(mixture), "--split", "train", *judge))
    assert "has no split 'heldout_x'" in one_error_line(run("eval", "--model", "fake:model", "--mixture", str(mixture), "--split", "heldout_x", *judge))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    unreachable = run("eval", "--model", "fake:model", "--mixture", str(mixture), "--out", str(tmp_path / "u"),
                      "--judge-backend", "openai", "--judge-model", "j", "--judge-base-url", f"http://127.0.0.1:{port}/v1")
    assert one_error_line(unreachable).startswith("error: judge backend") and unreachable.exit_code == 3
    # a baseline eval over other splits: one line, and the earlier report is untouched
    partial = tmp_path / "partial"
    assert run("eval", "--model", "fake:base", "--mixture", str(mixture), "--out", str(partial), *judge, "--split", "heldout").exit_code == 0
    before = (partial / "eval.json").read_bytes()
    mismatch = run("eval", "--model", "fake:model", "--baseline", str(partial), "--mixture", str(mixture),
                   "--out", str(partial), *judge)
    assert "has no grades for split(s)" in one_error_line(mismatch)
    assert (partial / "eval.json").read_bytes() == before
    assert "--bootstrap: Input should be greater than or equal to 100" in one_error_line(
        run("eval", "--model", "fake:model", "--mixture", str(mixture), "--bootstrap", "5", *judge))


def test_grades_parquet_schema(tmp_path: Path, mixture: Path, backends):
    evaluate(config(mixture, tmp_path / "e", splits=["persistence_harmful"]))
    table = pq.read_table(tmp_path / "e" / "grades.parquet")
    assert table.num_rows == 4 and table.schema.field("score").type == "double"
    assert set(table.column("persona_variant").to_pylist()) == {"harmful"}
    assert set(table.column("status").to_pylist()) <= {"scored", "unscoreable", "generation_failed", "no_reference"}


def test_answer_cache_asks_failed_requests_again(tmp_path: Path):
    from scenario_forge.config import SamplingParams
    from scenario_forge.evaluation.stages import cached_answers
    from scenario_forge.mixture import read_split

    rows = read_split(write_mixture(tmp_path / "m"), "heldout")
    flaky = FakeBackend(lambda r: None if r.id in ("answer:1", "answer:3") else "an answer")
    first = cached_answers(tmp_path / "cache", "k", lambda: flaky, rows, SamplingParams(), 0)
    assert [a.text is None for a in first].count(True) == 2
    steady = FakeBackend(lambda r: "an answer")
    again = cached_answers(tmp_path / "cache", "k", lambda: steady, rows, SamplingParams(), 0)
    assert all(a.text == "an answer" for a in again) and len(steady.requests) == 2  # only the failed ones
    third = cached_answers(tmp_path / "cache", "k", lambda: steady, rows, SamplingParams(), 0)
    assert [a.text for a in third] == [a.text for a in again] and len(steady.requests) == 2  # all from the cache


def test_default_splits_leave_out_emptied_ones():
    from scenario_forge.evaluation.run import default_splits

    splits = {"train": 8, "heldout": 4, "heldout_domains": 0, "persistence_plain": 2, "persistence_harmful": 0}
    assert default_splits(splits) == ["heldout", "persistence_plain"]
