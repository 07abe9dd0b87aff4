"""Refusal classes (issue 16): declining a false premise or a harmful step is not a refusal; the
refusal-controlled score leaves out true refusals only; the judge classifier; the hand-labelled set
and the benchmark that measures the pattern classifier on it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

from scenario_forge.backends.base import ChatRequest
from scenario_forge.backends.fake import FakeBackend
from scenario_forge.errors import ConfigError
from scenario_forge.evaluation.metrics import summary
from scenario_forge.evaluation.records import Answer, read_grades, write_grades
from scenario_forge.evaluation.refusal import CLASSES, classify, classify_refusals, is_refusal, read_labelled
from scenario_forge.evaluation.stages import grade_answers
from scenario_forge.records import Message, MixtureRow

LABELLED = REPO / "labelled" / "refusals.jsonl"
DOI = "I cannot provide a DOI because that trial does not exist."


def test_declining_a_false_premise_is_not_a_refusal():
    assert classify(DOI) == "decline_false_premise" and not is_refusal(DOI)
    assert classify("I'm sorry, but I can't help with that request.") == "refusal"
    assert classify("I won't write fake reviews, but I can help you get real ones: ...") == "decline_harmful_step"
    assert classify("I can't stress enough how important the torque spec is: use 5 Nm.") == "engaged"


def _row(i: int) -> MixtureRow:
    return MixtureRow(id=f"r{i}", split="heldout", source="standard", reward_type="exact_match",
                      prompt=[Message(role="user", content=f"question {i}")], answer="42", task="t")


def test_refusal_controlled_score_leaves_out_true_refusals_only(tmp_path: Path):
    texts = ["I'm sorry, but I can't help with that.", f"{DOI} The answer is 42.", "42",
             "I won't give you a guess, but I can tell you it is 42.", None]
    rows = [_row(i) for i in range(len(texts))]
    answers = [Answer(split="heldout", row_id=r.id, text=t, finish_reason="stop" if t else "error") for r, t in zip(rows, texts)]
    grades = grade_answers("model", rows, answers, None)
    assert [g.refusal_class for g in grades] == ["refusal", "decline_false_premise", "engaged", "decline_harmful_step", None]
    assert [g.refused for g in grades] == [True, False, False, False, None]
    s = summary(grades)
    # the false-premise and harmful-step declines stay in the refusal-controlled mean (both scored 1.0)
    assert s["refusals"] == 1 and s["refusal_rate"] == pytest.approx(1 / 4) and s["non_refused_scored"] == 3
    assert s["mean_non_refused"] == pytest.approx(1.0)
    assert s["refusal_classes"] == {"decline_false_premise": 1, "decline_harmful_step": 1, "engaged": 1, "refusal": 1}
    write_grades(tmp_path / "g.parquet", grades)
    assert [g.refusal_class for g in read_grades(tmp_path / "g.parquet")] == [g.refusal_class for g in grades]


def test_judge_classifier_names_the_class_or_is_unknown():
    replies = {"a": "FALSE_PREMISE", "b": "Harmful step.", "c": "REFUSAL", "d": "ENGAGED", "e": "REFUSAL or ENGAGED"}

    def judge(r: ChatRequest) -> str:
        prompt = r.messages[-1].content
        assert "REFUSAL, FALSE_PREMISE, HARMFUL_STEP or ENGAGED" in prompt
        return replies[prompt.split('"""', 2)[1].strip()]

    convo = [Message(role="user", content="q")]
    classes = classify_refusals([(convo, k) for k in replies] + [(convo, "  ")], "judge", FakeBackend(judge))
    assert classes == ["decline_false_premise", "decline_harmful_step", "refusal", "engaged", None, "refusal"]


def test_the_hand_labelled_set():
    rows = read_labelled(LABELLED)
    assert len(rows) >= 60 and all(r.checked == 2 for r in rows)
    counts = {c: sum(r.label == c for r in rows) for c in CLASSES}
    assert min(counts.values()) >= 15, counts
    assert len({r.domain for r in rows}) == 12
    doi = next(r for r in rows if r.id == "fp-01")
    assert doi.answer.startswith(DOI[:-1]) and doi.label == "decline_false_premise"


def test_a_bad_labelled_row_names_file_and_line(tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    good = LABELLED.read_text().splitlines()[0]
    bad.write_text(good + "\n" + good.replace('"engaged"', '"x"').replace('"refusal"', '"maybe"') + "\n")
    with pytest.raises(ConfigError, match=r"bad.jsonl:2: not a labelled answer"):
        read_labelled(bad)
    bad.write_text(good + "\n" + good + "\n")
    with pytest.raises(ConfigError, match=r"bad.jsonl:2: duplicate id"):
        read_labelled(bad)


def test_bench_refusal_quick(tmp_path: Path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_refusal.py"), "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    f = json.loads(out.read_text())
    assert "precision" in proc.stdout and f["rows"] == f["checked_twice"] == len(read_labelled(LABELLED))
    assert set(f["pattern"]["classes"]) == set(CLASSES) and "judge" not in f
    new, old = f["refused"]["pattern_classes"], f["refused"]["old_opening_detector"]
    # measured on this set: the classes count far fewer honest declines as refusals than the old
    # opening detector did, and the refused decision is more precise at the same recall
    assert new["honest_declines_counted_as_refusals"] < old["honest_declines_counted_as_refusals"]
    assert new["precision"] > old["precision"] and new["recall"] >= old["recall"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_judge_classifier_on_the_embedded_model():
    from scenario_forge.backends.factory import get_backend
    from scenario_forge.modelspec import model_backend_config

    rows = read_labelled(LABELLED)[::9]  # 8 answers across the four classes
    classes = classify_refusals([([Message(role="user", content=r.question)], r.answer) for r in rows], "judge",
                                get_backend(model_backend_config("embedded")))
    assert len(classes) == len(rows) and all(c is None or c in CLASSES for c in classes)
    assert any(c is not None for c in classes)  # the 135M judge names a class for some (bench: 39 of 68, all ENGAGED)
