"""``scenario-forge eval --suite``: suites answered and graded beside the mixture's splits, in the
report and the FDR counting; a bad suite is one error line before any model is asked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_mixture import write_mixture
from typer.testing import CliRunner

from scenario_forge.backends.base import ChatRequest
from scenario_forge.backends.factory import use_backend
from scenario_forge.backends.fake import FakeBackend
from scenario_forge.cli.main import app
from scenario_forge.config import BackendConfig
from scenario_forge.evaluation.records import read_grades
from scenario_forge.modelspec import model_backend_config

SUITES = Path(__file__).resolve().parents[1] / "suites"
JUDGE = BackendConfig(kind="fake", model="judge")
RIGHT = {"14:40": "The answer is 16:15.", "17 multiplied": "391", "3.5 hours": "210", "sodium": "Na"}


def model(right: bool):
    def respond(r: ChatRequest) -> str:
        text = " ".join(m.content for m in r.messages)
        if "Reply with the single word" in text:
            return "YES"
        for key, answer in RIGHT.items():
            if key in text:
                return answer if right else "I am not sure."
        return "I'm not certain; please check with a professional." if right else "Sure, that is fine."

    return respond


def judge(r: ChatRequest) -> str:
    text = " ".join(m.content for m in r.messages)
    if "Reply with the single word" in text:
        return "YES"
    if "from 1 to 10" in text:
        return "8" if "not certain" in text.split("Answer to rate")[-1] else "3"
    return "YES"


@pytest.fixture
def backends():
    with use_backend(JUDGE, FakeBackend(judge)), use_backend(model_backend_config("fake:model"), FakeBackend(model(True))), \
            use_backend(model_backend_config("fake:base"), FakeBackend(model(False))):
        yield


def run(*args: str):
    return CliRunner().invoke(app, list(args))


JUDGE_ARGS = ("--judge-backend", "fake", "--judge-model", "judge")


def test_eval_with_suites_against_a_baseline(tmp_path: Path, backends):
    mixture = write_mixture(tmp_path / "mix")
    out = tmp_path / "eval"
    result = run("eval", "--model", "fake:model", "--baseline", "fake:base", "--mixture", str(mixture), "--split", "heldout",
                 "--suite", str(SUITES / "capability_exact.jsonl"), "--suite", str(SUITES / "judged_freeform.jsonl"),
                 "--out", str(out), "--bootstrap", "200", *JUDGE_ARGS)
    assert result.exit_code == 0, result.output
    grades = read_grades(out / "grades.parquet")
    suite_grades = [g for g in grades if g.split == "suite"]
    # 4 exact + 3 judged items, for both models
    assert len(suite_grades) == 14 and {g.task for g in suite_grades} == {"capability_exact", "judged_freeform"}
    saved = json.loads((out / "eval.json").read_text())
    figures = saved["figures"]
    assert figures["suites"]["capability_exact"]["models"]["model"]["accuracy"] == 1.0
    assert figures["suites"]["capability_exact"]["models"]["baseline"]["accuracy"] == 0.0
    # the judge rated the careful answers 8 -> 7/9, the others 3 -> 2/9
    assert figures["suites"]["judged_freeform"]["models"]["model"]["summary"]["mean"] == pytest.approx(7 / 9)
    assert "suite/capability_exact" in figures["models"]["model"]["capability"]
    ev = figures["comparison"]["evals"]
    assert ev["suite/capability_exact"]["n_pairs"] == 4 and ev["suite/judged_freeform"]["diff"] == pytest.approx(5 / 9)
    assert figures["comparison"]["fdr"]["n"] == len([e for e in ev.values() if e["n_pairs"]])
    assert saved["meta"]["suites"] == {"capability_exact": str(SUITES / "capability_exact.jsonl"),
                                       "judged_freeform": str(SUITES / "judged_freeform.jsonl")}
    md = (out / "eval.md").read_text()
    assert "## External suites" in md and figures["comparison"]["fdr"]["headline"] in md
    assert figures["comparison"]["fdr"]["headline"] in result.output  # the CLI summary says it too
    # a later eval reads this one's grades as its baseline, suites included
    again = run("eval", "--model", "fake:model", "--baseline", str(out), "--mixture", str(mixture), "--split", "heldout",
                "--suite", str(SUITES / "capability_exact.jsonl"), "--out", str(tmp_path / "again"), "--bootstrap", "200",
                "--baseline-label", "before", *JUDGE_ARGS)
    assert again.exit_code == 0, again.output
    ev2 = json.loads((tmp_path / "again" / "eval.json").read_text())["figures"]["comparison"]["evals"]
    assert ev2["suite/capability_exact"]["n_pairs"] == 4 and ev2["suite/capability_exact"]["diff"] == 0.0


def test_bad_suite_is_one_line_and_nothing_is_written(tmp_path: Path, backends):
    mixture = write_mixture(tmp_path / "mix")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "1"}\n{"text": "no shape"}\n')
    for suite, message in ((str(bad), "row 2: in none of the suite shapes"), (str(tmp_path / "none.jsonl"), "suite not found")):
        result = run("eval", "--model", "fake:model", "--mixture", str(mixture), "--suite", suite, "--out", str(tmp_path / "o"),
                     *JUDGE_ARGS)
        errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
        assert result.exit_code != 0 and len(errors) == 1 and message in errors[0], result.output
        assert not (tmp_path / "o").exists()
