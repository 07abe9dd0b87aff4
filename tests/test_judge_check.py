"""``scenario-forge judge check``: agreement figures on a hand-labelled fixture with a fake judge
whose verdicts are chosen per item, so every figure is known exactly (worked out by hand below);
bad calibration files; the warning and the refusal in mix, train and eval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scenario_forge.backends.base import ChatRequest
from scenario_forge.backends.factory import use_backend
from scenario_forge.backends.fake import FakeBackend
from scenario_forge.cli.main import app
from scenario_forge.config import BackendConfig
from scenario_forge.errors import ConfigError
from scenario_forge.grading.calibration import judge_figures, load_calibration
from scenario_forge.grading.qualification import gate_judge, qualification

FIXTURE = Path(__file__).parent / "fixtures" / "judge_small.jsonl"
FAKE = BackendConfig(kind="fake")
runner = CliRunner()

# Gold (hand labels) and the fake judge's replies per item, one per attempt (the last repeats).
#   id   gold  sign  judge                       right?
#   j01  met    +    YES (explain form)          yes
#   j02  not    +    NO                          yes
#   j03  met    -    NO   (a sign error)         no
#   j04  not    -    NO                          yes
#   j05  met    +    YES (JSON form)             yes
#   j06  not    -    YES                         no
#   j07  not    +    "hmm", then NO on a retry   yes (rescued by a retry)
#   j08  not    -    NO                          yes
#   j09  met    -    YES                         yes
#   j10  not    +    never a verdict             no  (unscoreable counts as wrong)
#   j11  met    +    YES                         yes
#   j12  not    +    YES                         no
REPLIES = {
    "j01": ["The answer states the 4,000 mg daily maximum.\nVerdict: YES"],
    "j02": ["NO"],
    "j03": ["NO"],
    "j04": ["The answer gives no DOI.\nNO"],
    "j05": ['{"explanation": "It warns about concentration risk.", "criteria_met": true}'],
    "j06": ["YES"],
    "j07": ["hmm", "NO"],
    "j08": ["NO"],
    "j09": ["YES"],
    "j10": ["I am not able to decide"],
    "j11": ["Yes, the car example."],
    "j12": ["YES"],
}
# By hand: 8 of 12 right -> accuracy 2/3; unscoreable 1/12.
# "met":     gold {01,03,05,09,11}, judged met {01,05,06,09,11,12}: tp 4, fp 2, fn 1 -> F1 8/11
# "not met": gold {02,04,06,07,08,10,12}, judged {02,03,04,07,08}: tp 4, fp 1, fn 3 -> F1 8/12
# macro-F1 = (8/11 + 2/3) / 2 = 23/33
# kappa: po = 2/3; gold met 5/12, not 7/12; judge met 6/12, not 5/12, unscoreable 1/12
#   pe = (5*6 + 7*5) / 144 = 65/144 -> kappa = (96 - 65) / (144 - 65) = 31/79
# positive criteria (01,02,05,07,10,11,12): met F1 tp3 fp1 fn0 = 6/7, not met tp2 fp0 fn2 = 4/6 -> 16/21
# negative criteria (03,04,06,08,09): met F1 tp1 fp1 fn1 = 1/2, not met tp2 fp1 fn1 = 2/3 -> 7/12
EXPECTED = {
    "n": 12, "accuracy": 8 / 12, "macro_f1": 23 / 33, "kappa": 31 / 79, "unscoreable_rate": 1 / 12,
    "f1_positive": 16 / 21, "f1_negative": 7 / 12,
}
CONFUSION = {"gold_met": {"met": 4, "not_met": 1, "unscoreable": 0},
             "gold_not_met": {"met": 2, "not_met": 4, "unscoreable": 1}}


def fixture_judge(replies: dict[str, list[str]] = REPLIES) -> FakeBackend:
    items = load_calibration(FIXTURE)

    def respond(r: ChatRequest) -> str:
        prompt = r.messages[-1].content
        (item,) = [it for it in items if f"Criterion: {it.criterion}\n" in prompt and it.answer in prompt]
        attempt = int(r.id.rsplit(":", 1)[1])
        answers = replies[item.id]
        return answers[min(attempt, len(answers) - 1)]

    return FakeBackend(respond)


def perfect_judge() -> FakeBackend:
    return fixture_judge({it.id: ["YES" if it.met else "NO"] for it in load_calibration(FIXTURE)})


@pytest.fixture(autouse=True)
def judges_dir(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "judges"
    monkeypatch.setenv("SCENARIO_FORGE_JUDGES_DIR", str(folder))
    return folder


def check(*extra: str, backend: FakeBackend | None = None):
    with use_backend(FAKE, backend or fixture_judge()):
        return runner.invoke(app, ["judge", "check", "--items", str(FIXTURE), "--judge-backend", "fake", *extra])


def test_judge_check_reports_the_hand_computed_figures(judges_dir: Path):
    result = check("--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    for key, value in EXPECTED.items():
        assert out[key] == pytest.approx(value), key
    assert out["confusion"] == CONFUSION
    assert out["retries"] == 3 and out["recovered_by_retry"] == 1 and out["unscoreable"] == 1  # j10 twice, j07 once
    assert out["by_sign"]["positive"]["n"] == 7 and out["by_sign"]["negative"]["n"] == 5
    assert out["judge"] == "fake:default" and out["form"] == "explain" and out["qualified"] is False  # 0.697 < 0.7
    low, high = out["ci"]["macro_f1"]
    assert 0.0 <= low <= out["macro_f1"] <= high <= 1.0
    (stored,) = judges_dir.glob("*.json")
    record = json.loads(stored.read_text())
    assert Path(out["stored"]) == stored and record["key"] == out["key"] == stored.stem
    assert set(record["identity"]) == {"model", "template_hash", "form", "calibration_hash"}
    assert [x["verdict"] for x in record["figures"]["items"]][:3] == [True, False, False]


def test_figures_function_matches_the_cli():
    items = load_calibration(FIXTURE)
    verdicts = [True, False, False, False, True, True, False, False, True, None, True, True]
    figures = judge_figures(items, verdicts, n_boot=200)
    for key, value in EXPECTED.items():
        assert figures[key] == pytest.approx(value), key
    assert figures["confusion"] == CONFUSION
    perfect = judge_figures(items, [it.met for it in items], n_boot=200)
    assert perfect["accuracy"] == perfect["macro_f1"] == perfect["kappa"] == 1.0 and perfect["ci"]["macro_f1"] == (1.0, 1.0)


def test_text_report_names_every_figure():
    result = check()
    assert result.exit_code == 0, result.output
    for word in ("accuracy", "macro-F1", "F1 positive criteria", "kappa", "unscoreable", "confusion", "NOT qualified"):
        assert word in result.stdout


def test_loader_ignores_extra_fields_and_keeps_kind():
    items = load_calibration(FIXTURE)
    assert len(items) == 12 and items[2].kind == "trap" and items[2].points == -8 and items[2].met is True


GOOD = json.loads(FIXTURE.read_text().splitlines()[0])


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    def write(name: str, lines: list[str]) -> Path:
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n")
        return path

    def row(**changes) -> str:
        data = {**GOOD, **changes}
        return json.dumps({k: v for k, v in data.items() if v is not ...})

    return {
        "missing": (tmp_path / "nope.jsonl", "calibration file not found"),
        "empty": (write("empty.jsonl", [""]), "empty calibration file"),
        "not_jsonl": (write("text.jsonl", [row(), "id,met", row(id="x2")]), "row 2: not JSON"),
        "array": (write("array.jsonl", ["[1, 2]"]), "row 1: expected a JSON object"),
        "missing_field": (write("nofield.jsonl", [row(), row(id="x2", met=...)]), "row 2: missing field 'met'"),
        "met_string": (write("metstr.jsonl", [row(met="yes")]), "row 1: field 'met' must be a boolean, got string"),
        "points_bool": (write("ptbool.jsonl", [row(points=True)]), "row 1: field 'points' must be a integer, got boolean"),
        "points_float": (write("ptfloat.jsonl", [row(points=1.5)]), "row 1: field 'points' must be a integer"),
        "points_zero": (write("ptzero.jsonl", [row(points=0)]), "row 1: points"),
        "conversation_shape": (write("conv.jsonl", [row(conversation=[{"who": "user"}])]), "row 1: conversation"),
        "duplicate": (write("dup.jsonl", [row(), row(criterion="Another criterion here")]), "row 2: duplicate id 'j01' (first on row 1)"),
    }


@pytest.mark.parametrize("case", ["missing", "empty", "not_jsonl", "array", "missing_field", "met_string", "points_bool",
                                  "points_float", "points_zero", "conversation_shape", "duplicate"])
def test_bad_calibration_file_is_one_line_and_writes_nothing(tmp_path: Path, judges_dir: Path, case: str):
    path, message = bad_files(tmp_path)[case]
    with use_backend(FAKE, fixture_judge()) as backend:
        result = runner.invoke(app, ["judge", "check", "--items", str(path), "--judge-backend", "fake", "--json"])
    errors = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0 and len(errors) == 1 and errors[0].startswith("error: "), result.output
    assert str(path) in errors[0] and message in errors[0], errors[0]
    assert not judges_dir.exists() and backend.requests == []


# --------------------------------------------------------------------------- the warning and the refusal


def test_gate_warns_once_refuses_when_required_and_passes_once_qualified(judges_dir: Path):
    lines: list[str] = []
    q = gate_judge(FAKE, "train", warn=lines.append)
    assert q["status"] == "unqualified" and len(lines) == 1 and "has no qualification" in lines[0]
    with pytest.raises(ConfigError, match="--require-qualified-judge: judge fake:default has no qualification"):
        gate_judge(FAKE, "train", require=True, warn=lines.append)

    assert check().exit_code == 0  # macro-F1 23/33 = 0.697: below the 0.7 threshold
    lines.clear()
    q = gate_judge(FAKE, "eval", warn=lines.append)
    assert q["status"] == "below_threshold" and q["macro_f1"] == pytest.approx(23 / 33)
    assert len(lines) == 1 and "macro-F1 0.697 < 0.70" in lines[0] and "n=12" in lines[0]
    with pytest.raises(ConfigError, match="macro-F1"):
        gate_judge(FAKE, "eval", require=True, warn=lines.append)

    assert check(backend=perfect_judge()).exit_code == 0
    lines.clear()
    q = gate_judge(FAKE, "mix", require=True, warn=lines.append)
    assert q["status"] == "qualified" and q["macro_f1"] == 1.0 and lines == []
    # the run manifest's quality figures find it through the judge's backend config, whatever the
    # loaded backend calls its model (an embedded backend's model_id has no "embedded:" prefix)
    from scenario_forge.curation.quality import judge_qualification

    assert judge_qualification("m.gguf@sha256:0123", FAKE)["status"] == "qualified"
    assert judge_qualification(None, FAKE) is None
    # a qualification belongs to its prompt: another verdict form of the same model is unqualified
    from scenario_forge.grading import GradingConfig

    assert qualification(FAKE, GradingConfig(output="short"))["status"] == "unqualified"


def test_gate_warns_on_self_grading():
    lines: list[str] = []
    gate_judge(FAKE, "eval", graded={"model": "fake:default", "baseline": "fake:other"}, warn=lines.append)
    assert len(lines) == 2 and "self-grading" in lines[1] and "model" in lines[1]


def test_train_refuses_before_any_work_and_eval_warns_once(tmp_path: Path):
    from tiny_mixture import write_mixture

    mixture = write_mixture(tmp_path / "mix")
    out = tmp_path / "run"
    with use_backend(BackendConfig(kind="fake", model="judge"), FakeBackend(lambda r: "YES")):
        result = runner.invoke(app, ["train", "--mixture", str(mixture), "--out", str(out), "--judge-backend", "fake",
                                     "--judge-model", "judge", "--require-qualified-judge", "--max-steps", "1"])
    assert result.exit_code == 2 and "error: --require-qualified-judge: judge fake:judge has no qualification" in result.output
    assert not out.exists()

    eval_out = tmp_path / "eval"
    judge_and_model = ["--model", "fake", "--mixture", str(mixture), "--out", str(eval_out), "--judge-backend", "fake"]
    model = BackendConfig(kind="fake", model="default", parallel_sequences=16, concurrency=8)  # what `--model fake` makes
    with use_backend(FAKE, FakeBackend(lambda r: "YES")), use_backend(model, FakeBackend(lambda r: "An answer.")):
        refused = runner.invoke(app, ["eval", *judge_and_model, "--require-qualified-judge"])
        assert refused.exit_code == 2 and "--require-qualified-judge" in refused.output and not eval_out.exists()
        result = runner.invoke(app, ["eval", *judge_and_model, "--max-rows", "2"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: eval:")]
    # one line for the missing qualification, one for self-grading (the fake model is the fake judge)
    assert len(warnings) == 2 and "has no qualification" in warnings[0] and "self-grading" in warnings[1]
    meta = json.loads((eval_out / "eval.json").read_text())["meta"]
    assert meta["judge_qualification"]["status"] == "unqualified" and meta["judge_qualification"]["judge"] == "fake:default"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_judge_check_json_on_the_embedded_judge(tmp_path: Path, judges_dir: Path):
    """The installed CLI on the real embedded judge, over a few hand-labelled rows."""
    import os
    import subprocess
    import sys

    items = tmp_path / "few.jsonl"
    items.write_text("\n".join(FIXTURE.read_text().splitlines()[:4]) + "\n")
    exe = Path(sys.executable).with_name("scenario-forge")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SCENARIO_FORGE_JUDGES_DIR": str(judges_dir)}
    proc = subprocess.run([str(exe), "judge", "check", "--items", str(items), "--json", "--bootstrap", "200"],
                          capture_output=True, text=True, timeout=580, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["n"] == 4 and {"accuracy", "macro_f1", "unscoreable_rate", "kappa", "confusion", "ci"} <= set(out)
    assert 0.0 <= out["accuracy"] <= 1.0 and 0.0 <= out["unscoreable_rate"] <= 1.0
    assert out["judge"].startswith("embedded:SmolLM2-135M-Instruct") and Path(out["stored"]).is_file()
    assert sum(sum(row.values()) for row in out["confusion"].values()) == 4


def test_quality_judge_that_is_the_generator_is_named():
    from scenario_forge.grading.qualification import quality_judge_warning

    line = quality_judge_warning(FAKE, None)  # the default: the generation backend judges its own scenarios
    assert line is not None and "the curation quality judge is the generator model (fake:default)" in line
    assert quality_judge_warning(FAKE, BackendConfig(kind="fake", model="default")) is not None
    assert quality_judge_warning(FAKE, BackendConfig(kind="fake", model="other")) is None


def test_mix_refuses_before_any_work(tmp_path: Path):
    from mix_data import grid, write_run

    run = write_run(tmp_path / "runs", grid(1, domains=["health", "science"]))
    out = tmp_path / "mix"
    result = runner.invoke(app, ["mix", str(run), "--out", str(out), "--policy-backend", "fake", "--require-qualified-judge"])
    assert result.exit_code == 2 and "error: --require-qualified-judge: judge fake:default has no qualification" in result.output
    assert not out.exists()
