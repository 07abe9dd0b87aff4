"""The seams between flags and configs: options derived from the config models, one
``--orchestrator``, and one model-spec parser (issue 14, items 1 and 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import pytest
import typer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from typer.testing import CliRunner

from scenario_forge.cli.main import app
from scenario_forge.cli.options import DEFAULT_ORCHESTRATOR, ORCHESTRATOR_ENV, Choices, Given, config_command, derive
from scenario_forge.config import BackendConfig, GenerateConfig
from scenario_forge.curation.config import CurateConfig
from scenario_forge.errors import ConfigError
from scenario_forge.evaluation.config import EvalConfig
from scenario_forge.flags import flag, group
from scenario_forge.mixing.config import MixConfig
from scenario_forge.modelspec import parse_model_spec
from scenario_forge.publishing.config import PublishConfig
from scenario_forge.training.config import TrainConfig

runner = CliRunner()
COMMAND_MODELS = [GenerateConfig, CurateConfig, MixConfig, PublishConfig, TrainConfig, EvalConfig]


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error: ")]


@pytest.mark.parametrize("model", COMMAND_MODELS, ids=lambda m: m.__name__)
def test_every_derived_option_has_help_and_a_unique_flag(model: type[BaseModel]):
    options = derive(model)
    assert options, model.__name__
    names = [name for o in options for decl in o.decls for name in decl.split("/")]
    assert len(names) == len(set(names)), names
    for option in options:
        (info,) = [a for a in option.annotation.__metadata__]
        assert info.help, f"{model.__name__}.{option.path} has no description to show as help"


def test_nested_groups_take_their_prefix_and_subset():
    paths = {o.path: o.decls for o in derive(CurateConfig)}
    assert paths["curation.judge_backend.kind"] == ("--judge-backend",)
    assert paths["curation.judge_backend.model"] == ("--judge-model",)
    assert "curation.judge_backend.concurrency" not in paths  # only kind, model and base_url
    gen = {o.path: o.decls for o in derive(GenerateConfig)}
    assert gen["backend.kind"] == ("--backend",) and gen["backend.parallel_sequences"] == ("--parallel",)
    assert not any(p.startswith("curation.judge_backend") for p in gen)  # generate exposes three curation fields
    mix = {o.path: o.decls for o in derive(MixConfig)}
    assert mix["spread.policy.model"] == ("--policy-model",) and mix["spread.judge.base_url"] == ("--judge-base-url",)


def test_help_lists_literal_choices_and_the_orchestrator_default():
    result = runner.invoke(app, ["generate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "[embedded|llamacpp|openai|vllm|transformers|distilabel|fake]" in result.output
    assert "[auto|off]" in result.output and "[direct|prefect]" in result.output
    assert "number of scenarios to plan" in result.output and "(20)" in result.output  # help and default from the Field


def test_choices_complete_in_the_shell():
    assert Choices(("direct", "prefect")).complete(None, None, "p") == ["prefect"]
    assert Choices(("auto", "off")).complete(None, None, "") == ["auto", "off"]


@pytest.mark.parametrize("command", ["generate", "curate", "mix", "publish", "train", "eval"])
def test_one_orchestrator_option_with_one_default(command: str):
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]  # a group of commands
    (option,) = [p for p in commands[command].params if p.name == "orchestrator"]
    assert option.default == DEFAULT_ORCHESTRATOR == "direct"
    assert option.envvar == ORCHESTRATOR_ENV


def test_orchestrator_from_the_environment_is_checked_in_one_line(tmp_path: Path):
    result = runner.invoke(app, ["generate", "--out", str(tmp_path / "out")], env={ORCHESTRATOR_ENV: "cron"})
    assert result.exit_code == 2
    assert error_lines(result.output) == ["error: --orchestrator must be 'direct' or 'prefect', got 'cron'"]
    assert not (tmp_path / "out").exists()


class _Demo(BaseModel):
    """A config with one new field: the only edit that adds an option."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    n: int = Field(default=3, gt=0, description="how many", json_schema_extra=flag("--n"))
    colour: Literal["red", "blue"] = Field(default="red", description="which colour", json_schema_extra=flag("--colour"))
    backend: BackendConfig = Field(default=BackendConfig(), json_schema_extra=group("judge", only=["kind", "model"]))
    hidden: int = 0  # no flag: not an option


def _demo_app(seen: list[Given[_Demo]]) -> typer.Typer:
    demo = typer.Typer()

    @config_command(_Demo)
    def run(given: Given[_Demo], loud: Annotated[bool, typer.Option("--loud")] = False) -> None:
        seen.append(given)
        cfg = given.build()
        print(f"n={cfg.n} colour={cfg.colour} kind={cfg.backend.kind} loud={loud}")

    demo.command("run")(run)
    demo.command("other")(lambda: None)
    return demo


def test_a_new_field_is_an_option_with_its_checks(tmp_path: Path):
    seen: list[Given[_Demo]] = []
    demo = _demo_app(seen)
    ok = runner.invoke(demo, ["run", "--n", "5", "--colour", "blue", "--judge-model", "fake:x", "--loud"])
    assert ok.exit_code == 0, ok.output
    assert "n=5 colour=blue kind=fake loud=True" in ok.output
    assert seen[0].given() == ["n", "colour", "backend.model"] and seen[0].orchestrator == "direct"
    bad = runner.invoke(demo, ["run", "--colour", "green"])
    assert bad.exit_code == 2 and error_lines(bad.output) == ["error: --colour: Input should be 'red' or 'blue'"]
    assert "--hidden" not in runner.invoke(demo, ["run", "--help"]).output
    yaml = tmp_path / "demo.yaml"
    yaml.write_text("n: 7\ncolour: blue\n")
    over = runner.invoke(demo, ["run", "--config", str(yaml), "--n", "2"])
    assert "n=2 colour=blue" in over.output  # flags override the YAML file, which keeps what they do not set


def test_a_flag_declared_twice_fails_at_import():
    class Twice(BaseModel):
        a: int = Field(default=1, json_schema_extra=flag("--n"))
        b: int = Field(default=2, json_schema_extra=flag("--n"))

    with pytest.raises(TypeError, match="flag --n set by both a and b"):
        config_command(Twice)


# -- one model-spec parser ------------------------------------------------------------------------------


def test_model_spec_table(tmp_path: Path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert parse_model_spec(None) == ("embedded", None)
    assert parse_model_spec("embedded") == ("embedded", None)
    assert parse_model_spec("fake") == ("fake", "default")
    assert parse_model_spec("fake:judge") == ("fake", "judge")
    assert parse_model_spec(str(gguf)) == ("llamacpp", str(gguf))
    assert parse_model_spec(str(folder)) == ("transformers", str(folder))
    assert parse_model_spec("qwen", base_url="http://127.0.0.1:1/v1") == ("openai", "qwen")
    assert parse_model_spec(None, base_url="http://127.0.0.1:1/v1") == ("openai", None)
    assert parse_model_spec("vllm:Qwen/Qwen2.5-7B-Instruct") == ("vllm", "Qwen/Qwen2.5-7B-Instruct")
    assert parse_model_spec(f"llamacpp:{gguf}") == ("llamacpp", str(gguf))
    assert parse_model_spec("whatever", kind="vllm") == ("vllm", "whatever")  # a --*-backend flag wins
    assert parse_model_spec(str(gguf), kind="embedded") == ("embedded", None)
    with pytest.raises(ConfigError, match="has no config.json"):
        parse_model_spec(str(tmp_path))
    with pytest.raises(ConfigError, match="is a file but not a .gguf model"):
        parse_model_spec(str(folder / "config.json"))
    with pytest.raises(ConfigError, match="policy 'nowhere' not found"):
        parse_model_spec("nowhere", role="policy")


def test_every_backend_config_reads_the_spec_when_no_kind_is_given(tmp_path: Path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert BackendConfig.model_validate({"model": str(gguf)}).kind == "llamacpp"
    assert BackendConfig.model_validate({"model": "fake:x"}).model_dump(include={"kind", "model"}) == {"kind": "fake", "model": "x"}
    assert BackendConfig.model_validate({"base_url": "http://127.0.0.1:1/v1"}).kind == "openai"
    assert BackendConfig.model_validate({"kind": "vllm", "model": "fake:x"}).model == "fake:x"  # a given kind wins
    assert BackendConfig.model_validate({}).kind == "embedded"
    with pytest.raises(ValidationError, match="model 'nowhere' not found"):
        BackendConfig.model_validate({"model": "nowhere"})


def test_generate_model_without_backend_names_the_backend(tmp_path: Path):
    """``--model FILE.gguf`` alone used to run the embedded model silently; now the spec names llamacpp."""
    missing = runner.invoke(app, ["generate", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "out")])
    assert missing.exit_code == 2 and "not found: give 'embedded'" in error_lines(missing.output)[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["generate", "curate", "mix", "publish", "train", "evaluate"])
def test_each_command_names_a_direct_job_and_a_flow_that_exist(command: str):
    from importlib import import_module

    module = import_module(f"scenario_forge.cli.{command}")
    for target in (module.DIRECT, module.FLOW):
        where, _, name = target.partition(":")
        assert callable(getattr(import_module(where), name)), target


def test_the_shell_completes_a_literal_option():
    env = {"_SCENARIO_FORGE_COMPLETE": "complete_bash", "COMP_WORDS": "scenario-forge mix --orchestrator p", "COMP_CWORD": "3"}
    result = runner.invoke(app, [], env=env, prog_name="scenario-forge")
    assert result.output.split() == ["prefect"]
