"""``scenario-forge experiment``: the config and its bad inputs (one line, before any training), the
judge warning, compute matching, and (slow) a whole experiment on a tiny policy with fake judges:
an arm that fails mid-run leaves the finished arms intact and the same command resumes."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from mix_data import HashEmbedder, grid, write_run
from typer.testing import CliRunner

from scenario_forge.backends.factory import use_backend
from scenario_forge.backends.fake import FakeBackend
from scenario_forge.cli.main import app
from scenario_forge.config import BackendConfig
from scenario_forge.errors import ConfigError
from scenario_forge.experiment.config import ExperimentConfig, load_experiment
from scenario_forge.experiment.plan import match_compute, plan_experiment, resolve_eval_judge
from scenario_forge.mixing import guard
from scenario_forge.records import MixtureRow

REWARD = BackendConfig(kind="fake", model="reward-judge")
EVAL = BackendConfig(kind="fake", model="eval-judge")


def _judge() -> FakeBackend:
    return FakeBackend(lambda r: random.Random(r.messages[-1].content).choice(["YES", "NO"]))


@pytest.fixture(autouse=True)
def fake_judges_and_embedder(monkeypatch):
    monkeypatch.setattr(guard, "make_embedder", lambda model, cache_dir: HashEmbedder())
    with use_backend(REWARD, _judge()), use_backend(EVAL, _judge()):
        yield


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return write_run(tmp_path_factory.mktemp("runs"), grid(1, domains=["health", "science", "business"]))


def experiment(run: Path, out: Path, **over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "tiny",
        "runs": [str(run)],
        "baseline": "baseline",
        "arms": [{"name": "baseline", "recipe": "baseline"}, {"name": "paper-5pct", "recipe": "paper-5pct"},
                 {"name": "health-only", "recipe": "health-only"}],
        "policy": "embedded",
        "budget": {"max_steps": 2, "batch_size": 4, "num_generations": 2, "max_completion_length": 6,
                   "learning_rate": 1e-3, "token_tolerance": 0.9},
        "judges": {"reward": REWARD.model_dump(mode="json"), "eval": EVAL.model_dump(mode="json")},
        "mix": {"total_rows": 40, "spread": {"enabled": False}},
        "eval": {"max_rows": 3, "answer_sampling": {"max_tokens": 6}, "bootstrap": 200, "min_pairs": 2},
        "out": str(out),
    }
    for key, value in over.items():
        data[key] = value
    return data


def write(tmp_path: Path, data: dict[str, Any] | str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def one_error_line(result: Any) -> str:
    lines = [x for x in result.output.splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith("error: ")]
    assert len(errors) == 1, result.output
    return errors[0]


@pytest.mark.parametrize("change, expected", [
    ({"arms": [{"name": "baseline", "recipe": "baseline"}, {"name": "x", "recipe": "no-such-recipe"}]}, "arm 'x': unknown recipe 'no-such-recipe'"),
    ({"runs": ["/no/such/run"]}, "run not found: /no/such/run"),
    ({"baseline": "nobody"}, "baseline 'nobody' is not one of the arms"),
    ({"budget": {"max_steps": 2, "batch_size": 3, "num_generations": 2}}, "must be divisible by num_generations"),
    ({"budget": {"train": {"max_steps": 9}}}, "budget.train may not set max_steps"),
    ({"eval": {"suites": ["SUITE"]}}, "SUITE"),
    ({"eval": {"suites": ["nobody-org-xyz/no-such-suite-xyz"]}}, "nobody-org-xyz/no-such-suite-xyz"),
])
def test_bad_input_is_one_line_before_anything_is_written(run: Path, tmp_path: Path, change: dict, expected: str, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    bad_suite = tmp_path / "bad_suite.jsonl"
    bad_suite.write_text(json.dumps({"foo": 1, "bar": "no adapter has this shape"}) + "\n")
    out = tmp_path / "exp"
    data = experiment(run, out, **change)
    if "eval" in change and change["eval"]["suites"] == ["SUITE"]:
        data["eval"] = {"suites": [str(bad_suite)]}
        expected = str(bad_suite)
    result = cli("experiment", str(write(tmp_path, data)))
    assert result.exit_code != 0
    assert expected in one_error_line(result)
    assert not (out / "arms").exists()


def test_a_yaml_file_cannot_run_code(tmp_path: Path):
    path = write(tmp_path, "name: !!python/object/apply:os.system ['touch pwned']\n")
    result = cli("experiment", str(path))
    assert result.exit_code == 2 and "malformed YAML" in one_error_line(result)
    assert not Path("pwned").exists()
    assert "not found" in one_error_line(cli("experiment", str(tmp_path / "missing.yaml")))


def test_the_eval_judge_defaults_to_another_model_and_same_is_warned(run: Path, tmp_path: Path, capsys):
    base = experiment(run, tmp_path / "exp")
    # unset, with an embedded reward judge: there is no other packaged model, so it must be named
    embedded = {**base, "judges": {"reward": {"kind": "embedded"}}}
    with pytest.raises(ConfigError, match="judges.eval"):
        resolve_eval_judge(ExperimentConfig.model_validate(embedded))
    # unset, with another reward judge: the embedded model, a different one
    other = ExperimentConfig.model_validate({**base, "judges": {"reward": REWARD.model_dump()}})
    judge, same = resolve_eval_judge(other)
    assert judge.kind == "embedded" and not same
    # the same model on purpose: one warning line; different models: none
    warned: list[str] = []
    same_cfg = ExperimentConfig.model_validate({**base, "judges": {"reward": REWARD.model_dump(), "eval": "same-as-reward"}})
    plan = plan_experiment(same_cfg, warn=warned.append)
    assert plan.judges_same_model and plan.eval_judge == REWARD and len(warned) == 1 and "reward judge" in warned[0]
    warned.clear()
    plan = plan_experiment(ExperimentConfig.model_validate(base), warn=warned.append)
    assert not plan.judges_same_model and warned == []
    # by default the warning is one line on stderr, printed before anything runs
    capsys.readouterr()
    plan_experiment(same_cfg)
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert len(err) == 1 and err[0].startswith("warning: experiment: the evaluation judge is the reward judge's model")


def _rows(n: int, words: int) -> list[MixtureRow]:
    return [MixtureRow.model_validate({"id": f"r{i}", "split": "train", "source": "standard", "reward_type": "exact_match",
                                       "prompt": [{"role": "user", "content": " ".join(["w"] * words)}], "answer": "1"})
            for i in range(n)]


def test_compute_is_matched_or_refused_before_training(run: Path, tmp_path: Path, monkeypatch):
    data = experiment(run, tmp_path / "exp")
    data["budget"] = {**data["budget"], "token_tolerance": 0.1, "max_completion_length": 10}
    plan = plan_experiment(ExperimentConfig.model_validate(data))
    rows = {"baseline": _rows(8, 20), "paper-5pct": _rows(8, 21), "health-only": _rows(2, 20)}
    from scenario_forge.training import dataset

    monkeypatch.setattr(dataset, "training_rows", lambda folder, split, max_rows: ("train", rows[folder.name]))
    folders = {a: tmp_path / a for a in rows}
    count = lambda rs: [len(r.prompt[0].content.split()) for r in rs]
    compute = match_compute(plan, folders, count_tokens=count)
    by = {c.arm: c for c in compute.arms}
    # 2 steps x 4 completions, 2 per prompt: 4 prompts; 8 completions x (20 + 10) tokens
    assert compute.completions == 8 and by["baseline"].prompts == 4 and by["baseline"].estimated_tokens == 240
    assert by["paper-5pct"].estimated_tokens == 248 and by["paper-5pct"].estimated_gap == pytest.approx(8 / 240, abs=1e-4)
    assert by["health-only"].passes == 2.0  # 4 prompts from 2 rows: cycled (the default)
    # refuse a short split when asked to
    refuse = {**data, "budget": {**data["budget"], "short_data": "refuse"}}
    with pytest.raises(ConfigError, match="arm 'health-only': compute cannot be matched: 4 prompts needed"):
        match_compute(plan_experiment(ExperimentConfig.model_validate(refuse)), folders, count_tokens=count)
    # an arm whose prompts are much longer cannot be matched within 10%
    rows["paper-5pct"] = _rows(8, 40)
    with pytest.raises(ConfigError, match=r"arm 'paper-5pct': compute cannot be matched: estimated training tokens 400 are \+66.7%"):
        match_compute(plan, folders, count_tokens=count)


def test_config_round_trips_through_the_example_file():
    cfg = load_experiment(Path(__file__).parent.parent / "experiments" / "cpu-embedded.yaml")
    assert [a.recipe for a in cfg.ordered_arms()] == ["baseline", "paper-5pct", "health-only"]
    assert cfg.policy == "embedded"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_an_experiment_on_a_tiny_policy_resumes_after_a_failed_arm(run: Path, tmp_path: Path, monkeypatch):
    from tiny_mixture import tiny_policy

    from scenario_forge.experiment.run import run_experiment

    policy = tiny_policy(tmp_path / "policy")
    out = tmp_path / "exp"
    data = experiment(run, out, policy=str(policy))
    data["arms"] = [{"name": "baseline", "recipe": "baseline"}, {"name": "health-only", "recipe": "health-only"}]
    data["eval"] = {**data["eval"], "max_rows": 2, "suites": [str(Path(__file__).parent.parent / "suites" / "capability_exact.jsonl")]}
    cfg = ExperimentConfig.model_validate(data)

    from scenario_forge.training import trainer

    real_train, trained = trainer.train, []

    def flaky_train(config):
        trained.append(config.out.parent.name)
        if config.out.parent.name == "health-only" and trained.count("health-only") == 1:
            raise RuntimeError("the machine went away")
        return real_train(config)

    monkeypatch.setattr(trainer, "train", flaky_train)
    with pytest.raises(RuntimeError, match="went away"):
        run_experiment(cfg)
    # the finished arms are intact: trained, with their markers; the failed one has none
    assert (out / "arms" / "baseline" / "train.done.json").is_file() and (out / "arms" / "baseline" / "train" / "final").is_dir()
    assert not (out / "arms" / "health-only" / "train.done.json").exists()
    assert not (out / "experiment.md").exists()

    result = run_experiment(cfg)  # the same config resumes: only the failed arm trains again
    assert trained == ["baseline", "health-only", "health-only"]
    fig = json.loads((out / "experiment.json").read_text())
    assert fig["arms_order"] == ["baseline", "health-only"]
    for arm in fig["arms_order"]:
        c = fig["arms"][arm]["compute"]
        assert c["steps"] == 2 and c["completions"] == 8 and c["measured_tokens"] > 0
    # every arm answered the same rows; each non-baseline arm has the FDR headline and per-eval CIs
    for arm in ("health-only",):
        comp = fig["arms"][arm]["comparison"]
        assert comp["headline"].endswith(f"after FDR at q={cfg.eval.fdr_q:g})")
        assert comp["fdr"]["n"] == len([e for e in comp["evals"].values() if e["n_pairs"]])
        assert all("p_adjusted" in e and "ci_low" in e for e in comp["evals"].values())
    # transfer is split by each arm's own mixture: health-only trained on health only
    assert fig["arms"]["health-only"]["transfer"]["trained_domains"] == ["health"]
    assert fig["judges"]["same_model"] is False
    assert "capability_exact" in " ".join(fig["arms"]["baseline"]["capability"])
    md = (out / "experiment.md").read_text()
    for heading in ("## Headline", "## Compute", "## Arm x evaluation", "## Persistence", "## Transfer", "## Capability checks"):
        assert heading in md
    assert (out / "plots" / "training_tokens.png").is_file()
    # a third run does nothing again: every stage is skipped by its marker
    trained.clear()
    run_experiment(cfg)
    assert trained == [] and result.figures["arms_order"] == fig["arms_order"]


def test_the_experiment_is_one_prefect_flow_with_a_deployment():
    from flows.experiment import experiment_flow
    from scenario_forge.experiment.run import EXPERIMENT_STEPS
    from scenario_forge.steps import ForEach, step_names

    assert experiment_flow.name == "experiment"
    deployments = yaml.safe_load((Path(__file__).parent.parent / "prefect.yaml").read_text())["deployments"]
    (dep,) = [d for d in deployments if d["name"] == "experiment"]
    assert dep["entrypoint"] == "flows/experiment.py:experiment_flow"
    # one task run per arm in the fan-outs; training steps carry the `train` tag, model requests `llm`
    fan_outs = {s.name: s for s in EXPERIMENT_STEPS if isinstance(s, ForEach)}
    assert set(fan_outs) == {"mix-arm", "train-arm", "evaluate-arm"}
    assert fan_outs["train-arm"].tags == ("train",) and fan_outs["evaluate-arm"].tags == ("llm",)
    assert step_names(EXPERIMENT_STEPS)[0] == "prepare-experiment" and step_names(EXPERIMENT_STEPS)[-1] == "experiment-report"
