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


def _rows(n: int, words: int, source: str = "standard", prefix: str = "r", domain: str | None = None) -> list[MixtureRow]:
    return [MixtureRow.model_validate({"id": f"{prefix}{i}", "split": "train", "source": source, "reward_type": "exact_match",
                                       "prompt": [{"role": "user", "content": " ".join(["w"] * words)}], "answer": "1",
                                       "domain": domain})
            for i in range(n)]


def test_the_draw_honours_the_mixture_s_composition():
    from scenario_forge.experiment.draw import apportion, by_source, draw_prompts

    # the committed CPU run's arms: 2 beneficial + 38 standard rows, 12 prompts; 0.6 and 11.4 -> 1 and 11
    paper = _rows(2, 9, "beneficial", "b", "games") + _rows(38, 3, "standard", "s")
    health = _rows(2, 9, "beneficial", "h", "health") + _rows(38, 3, "standard", "s")
    drawn = draw_prompts(paper, 12, seed=0)
    assert len(drawn) == 12 and by_source(drawn) == {"beneficial": 1, "standard": 11}
    assert len({r.id for r in drawn}) == 12  # no row twice while the split is long enough
    # seeded: the same for a given seed, another draw for another seed
    assert [r.id for r in draw_prompts(paper, 12, seed=0)] == [r.id for r in drawn]
    assert {r.id for r in draw_prompts(paper, 12, seed=1)} != {r.id for r in drawn}
    # arms mixed from the same standard rows draw the same standard prompts: they differ in their beneficial ones
    std = lambda rows: [r.id for r in rows if r.source == "standard"]
    assert std(draw_prompts(health, 12, seed=0)) == std(drawn)
    # largest remainder, exactly; a source short of its quota is passed over whole, then the rest by rank
    assert apportion({"beneficial": 2, "standard": 5}, 10) == {"beneficial": 3, "standard": 7}  # 2.857 / 7.143
    assert apportion({"beneficial": 5, "standard": 95}, 30) == {"beneficial": 1, "standard": 29}  # 1.5 / 28.5: a tie -> the larger
    small = _rows(3, 9, "beneficial", "b") + _rows(3, 3, "standard", "s")
    cycled = draw_prompts(small, 10, seed=0)
    assert by_source(cycled) == {"beneficial": 5, "standard": 5}
    ids = [r.id for r in cycled]
    assert all(ids.count(f"b{i}") >= 1 and ids.count(f"s{i}") >= 1 for i in range(3))
    # the draw without beneficial rows is all standard; a split with an id twice is refused
    assert by_source(draw_prompts(_rows(4, 3), 3, seed=0)) == {"beneficial": 0, "standard": 3}
    with pytest.raises(ConfigError, match="more than once"):
        draw_prompts(_rows(2, 3) + _rows(1, 3), 2, seed=0)


def test_an_arm_that_would_train_on_no_beneficial_prompt_is_warned_or_refused(run: Path, tmp_path: Path, monkeypatch):
    from scenario_forge.training import dataset

    data = experiment(run, tmp_path / "exp")
    data["budget"] = {**data["budget"], "max_steps": 6, "token_tolerance": 0.9}  # 6 steps x 2 prompts = 12 prompts
    rows = {"baseline": _rows(40, 3), "paper-5pct": _rows(2, 9, "beneficial", "b", "games") + _rows(38, 3),
            "health-only": _rows(1, 9, "beneficial", "h", "health") + _rows(99, 3)}
    monkeypatch.setattr(dataset, "training_rows", lambda folder, split, max_rows: ("train", rows[folder.name]))
    folders = {a: tmp_path / a for a in rows}
    count = lambda rs: [len(r.prompt[0].content.split()) for r in rs]
    warned: list[str] = []
    compute = match_compute(plan_experiment(ExperimentConfig.model_validate(data)), folders, count_tokens=count, warn=warned.append)
    by = {c.arm: c for c in compute.arms}
    # planned before training, per source; the estimate is over the drawn prompts (1 x 9 + 11 x 3 words)
    assert by["paper-5pct"].prompts_by_source == {"beneficial": 1, "standard": 11}
    assert by["paper-5pct"].train_rows_by_source == {"beneficial": 2, "standard": 38}
    assert by["paper-5pct"].mean_prompt_tokens == pytest.approx(42 / 12, abs=0.05)
    assert by["baseline"].prompts_by_source == {"beneficial": 0, "standard": 12} and len(by["baseline"].prompt_ids) == 12
    # 1 of 100 rows: 0.12 of a prompt rounds to 0 -> one warning line, for that arm only (never the baseline)
    assert by["health-only"].prompts_by_source == {"beneficial": 0, "standard": 12}
    assert len(warned) == 1 and warned[0].startswith("experiment: arm 'health-only' would train on 0 beneficial prompts")
    assert "1 beneficial of 100 rows" in warned[0]
    # --strict (the file's `strict: true`) refuses it, before any training
    with pytest.raises(ConfigError, match=r"arm 'health-only' would train on 0 beneficial prompts.*\(--strict\)"):
        match_compute(plan_experiment(ExperimentConfig.model_validate({**data, "strict": True})), folders, count_tokens=count)


def test_used_prompts_are_counted_per_source_from_the_reward_log(tmp_path: Path):
    from scenario_forge.experiment.draw import used_prompts

    lines = []
    for step, sources in ((0, ["beneficial", "beneficial", "standard", "standard"]), (1, ["standard"] * 4),
                          (1, ["standard"] * 4)):  # step 1 logged twice: rerun after a resume
        lines += [json.dumps({"step": step, "id": "x", "source": s, "reward": 0.0}) for s in sources]
    (tmp_path / "rewards.jsonl").write_text("\n".join(lines) + "\n")
    assert used_prompts(tmp_path, num_generations=2, completions_per_step=4) == {"beneficial": 1, "standard": 3}
    assert used_prompts(tmp_path / "none", 2, 4) is None


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
    data["budget"] = {**data["budget"], "max_steps": 6}  # 12 prompts: 5% of them is 0.6 -> 1 beneficial prompt
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
        assert c["steps"] == 6 and c["completions"] == 24 and c["measured_tokens"] > 0
        # the prompts it trained on, planned before training and counted from the trainer's reward log
        assert c["prompts_used"] == c["prompts_planned"] and sum(c["prompts_planned"].values()) == 12
    assert fig["arms"]["health-only"]["compute"]["prompts_planned"] == {"beneficial": 1, "standard": 11}
    assert fig["arms"]["baseline"]["compute"]["prompts_planned"] == {"beneficial": 0, "standard": 12}
    plan = json.loads((out / "compute_plan.json").read_text())
    drawn = {a["arm"]: a["prompt_ids"] for a in plan["arms"]}
    from scenario_forge.mixture import read_split

    assert [r.id for r in read_split(out / "arms" / "health-only" / "prompts", "train")] == drawn["health-only"]
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


@pytest.mark.timeout(180)
def test_strict_refuses_an_arm_without_a_beneficial_prompt_before_training(run: Path, tmp_path: Path, monkeypatch):
    from tiny_mixture import tiny_policy

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "exp"
    data = experiment(run, out, policy=str(tiny_policy(tmp_path / "policy")))
    data["arms"] = [{"name": "baseline", "recipe": "baseline"}, {"name": "health-only", "recipe": "health-only"}]
    path = write(tmp_path, data)  # 2 steps x 2 prompts: 4 prompts, 5% of them rounds to 0
    result = cli("experiment", str(path), "--strict")
    assert result.exit_code != 0
    line = one_error_line(result)
    assert "arm 'health-only' would train on 0 beneficial prompts" in line and "(--strict)" in line
    assert (out / "arms" / "health-only" / "mixture" / "mixture.json").is_file()  # mixed, then refused
    assert not any((out / "arms").glob("*/train")) and not (out / "arms" / "health-only" / "prompts").exists()
