"""The end-to-end job's parameters: each stage's own config, less the input the pipeline fills in.

``generate`` is a full :class:`GenerateConfig`. The later stages read what an earlier stage
wrote (the generated run, the mixture), which does not exist when the run is submitted, so they
take *options*: their own config model with that input field made optional. The options are
validated when the run starts (a bad recipe name or training knob fails before any model loads);
the pipeline then builds each stage's real config with the input filled in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..config import GenerateConfig
from ..evaluation.config import EvalConfig
from ..evaluation.run import TrainEvalResult
from ..manifest import Manifest
from ..mixing.config import MixConfig
from ..mixture import MixtureMeta
from ..publishing.build import PublishResult
from ..publishing.config import PublishConfig
from ..training.config import TrainConfig
from .runners import TaskRunnerConfig

# The options re-declare an input field as optional. Pydantic allows a subclass to override a
# field; mypy reads it as a Liskov violation (``assignment``), which is why those lines carry an
# ignore. An options object is never used as the config it derives from: see ``_fill``.


class MixOptions(MixConfig):
    """``MixConfig`` without its inputs: ``runs`` is the generated run; ``out`` defaults next to it."""

    runs: list[Path] = Field(default_factory=list, description="filled in by the pipeline: the generated run")
    out: Path | None = Field(default=None, description="mixture folder; default: OUT/RUN_ID-mixture")  # type: ignore[assignment]


class TrainOptions(TrainConfig):
    """``TrainConfig`` without its input: ``mixture`` is the pipeline's mixture."""

    mixture: Path | None = Field(default=None, description="filled in by the pipeline: the mixture")  # type: ignore[assignment]


class EvalOptions(EvalConfig):
    """``EvalConfig`` without its inputs: the pipeline's mixture and the trained model."""

    mixture: Path | None = Field(default=None, description="filled in by the pipeline: the mixture")  # type: ignore[assignment]


class PublishOptions(PublishConfig):
    """``PublishConfig`` without its input: ``source`` is the pipeline's mixture."""

    source: Path | None = Field(default=None, description="filled in by the pipeline: the mixture")  # type: ignore[assignment]

    @model_validator(mode="after")
    def _somewhere(self) -> PublishOptions:  # replaces PublishConfig's check, which reads source
        if self.local is None and self.repo_id is None:
            raise ValueError("say where to publish: local and/or repo_id")
        return self


C = TypeVar("C", bound=BaseModel)


def _fill(model: type[C], options: BaseModel, **inputs: Any) -> C:
    # exclude_unset: fields the user left alone take the real config's defaults and validators.
    return model.model_validate({**options.model_dump(exclude_unset=True), **inputs})


class PipelineConfig(BaseModel):
    """generate -> mix -> (train -> evaluate) -> (publish): the ``end-to-end`` flow's parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    generate: GenerateConfig = Field(description="the scenarios to generate (and curate)")
    runner: TaskRunnerConfig = Field(default=TaskRunnerConfig(), description="where generation's shard tasks run")
    mix: MixOptions = Field(default_factory=MixOptions, description="the training mixture built from the run")
    train: TrainOptions | None = Field(default=None, description="GRPO on the mixture; empty: stop after mixing")
    evaluate: EvalOptions | None = Field(
        default=None,
        description="evaluation of the trained model; default (with train): the held-out splits vs the start policy",
    )
    publish: PublishOptions | None = Field(default=None, description="publish the mixture; empty: don't")

    @model_validator(mode="after")
    def _evaluate_needs_train(self) -> PipelineConfig:
        if self.evaluate is not None and self.train is None:
            raise ValueError("evaluate evaluates the trained model: give train too (or run the evaluate flow)")
        return self

    def mix_config(self, run_dir: Path) -> MixConfig:
        out = self.mix.out or run_dir.with_name(f"{run_dir.name}-mixture")
        return _fill(MixConfig, self.mix, runs=[run_dir], out=out)

    def train_config(self, mixture: Path) -> TrainConfig:
        assert self.train is not None
        return _fill(TrainConfig, self.train, mixture=mixture)

    def eval_config(self, mixture: Path) -> EvalConfig | None:
        return None if self.evaluate is None else _fill(EvalConfig, self.evaluate, mixture=mixture)

    def publish_config(self, mixture: Path) -> PublishConfig:
        assert self.publish is not None
        return _fill(PublishConfig, self.publish, source=mixture)


class EndToEndResult(BaseModel):
    """What the ``end-to-end`` flow returns: each stage's own record (absent: the stage did not run)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    generate: Manifest
    mix: MixtureMeta
    train_eval: TrainEvalResult | None = None
    publish: PublishResult | None = None
