"""The experiment file's typed model: runs, arms (recipes), the policy, the training budget, the
judges and the evaluation. Loaded with ``yaml.safe_load`` (a data file never runs code) and
validated by pydantic; everything that needs the disk or a model is checked by :mod:`.plan`.

>>> cfg = ExperimentConfig.model_validate({
...     "name": "demo", "runs": ["r"], "baseline": "base",
...     "arms": [{"name": "base", "recipe": "baseline"}, {"name": "p5", "recipe": "paper-5pct"}]})
>>> [a.name for a in cfg.arms], cfg.budget.prompts_per_run, cfg.judges.eval
(['base', 'p5'], 100, None)
>>> try:
...     ExperimentConfig.model_validate({"name": "d", "runs": ["r"], "baseline": "x",
...         "arms": [{"name": "a", "recipe": "baseline"}, {"name": "b", "recipe": "baseline"}]})
... except ValueError as exc:
...     print(exc.errors()[0]["msg"])
Value error, baseline 'x' is not one of the arms (a, b)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..config import BackendConfig
from ..errors import ConfigError
from ..evaluation.config import AnswerSampling, RefusalMethod

ShortData = Literal["cycle", "refuse"]
#: ``judges.eval: same-as-reward``: grade the evaluation with the reward judge on purpose (warned).
SAME_AS_REWARD = "same-as-reward"
#: Mix fields the experiment sets per arm; an experiment's ``mix:`` block may not set them.
_ARM_MIX_FIELDS = ("runs", "recipe", "out", "overwrite")
#: Train fields the budget or the experiment sets; ``budget.train:`` may not set them.
_FIXED_TRAIN_FIELDS = (
    "mixture", "split", "max_rows", "policy", "out", "resume", "judge", "max_steps", "epochs", "batch_size",
    "gradient_accumulation_steps", "num_generations", "max_completion_length", "learning_rate", "seed",
)


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _label(value: str) -> str:
    if not value or not value.replace("-", "").replace("_", "").replace(".", "").isalnum() or len(value) > 40:
        raise ValueError(f"name {value!r} may hold only letters, digits, '-', '_' and '.' (at most 40)")
    return value


class ArmConfig(_Config):
    """One arm: a name (its folder and its label in the report) and the recipe it mixes with."""

    name: str = Field(description="the arm's label (letters, digits, '-', '_', '.')")
    recipe: str = Field(description="built-in recipe name or recipe YAML file")

    @field_validator("name")
    @classmethod
    def _plain(cls, value: str) -> str:
        return _label(value)


class BudgetConfig(_Config):
    """The compute every arm gets: the same optimizer steps and the same sampled completions, and
    training tokens (prompt + completion, measured) within ``token_tolerance`` of the baseline's."""

    max_steps: int = Field(default=50, ge=1, description="optimizer steps per arm")
    batch_size: int = Field(default=8, ge=1, description="completions per device step")
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    num_generations: int = Field(default=4, ge=2, description="completions sampled per prompt")
    max_completion_length: int = Field(default=256, ge=1, le=32768)
    learning_rate: float = Field(default=1e-6, gt=0, le=1.0)
    seed: int = Field(default=0, ge=0)
    token_tolerance: float = Field(
        default=0.25, gt=0.0, lt=1.0,
        description="largest relative difference from the baseline arm's training tokens: checked on the "
        "estimate before training (refused above it) and on the measured tokens after (reported)",
    )
    short_data: ShortData = Field(
        default="cycle",
        description="an arm whose train split has fewer rows than the prompts the budget draws: cycle "
        "(TRL passes over the split again; the epochs are reported) or refuse before training",
    )
    train: dict[str, Any] = Field(
        default_factory=dict, description="other TrainConfig fields, the same for every arm (e.g. temperature, beta)"
    )

    @property
    def prompts_per_step(self) -> int:
        return self.batch_size * self.gradient_accumulation_steps // self.num_generations

    @property
    def prompts_per_run(self) -> int:
        """Prompts an arm draws in its whole run (each sampled ``num_generations`` times)."""
        return self.max_steps * self.prompts_per_step

    @property
    def completions_per_run(self) -> int:
        return self.max_steps * self.batch_size * self.gradient_accumulation_steps

    @field_validator("train")
    @classmethod
    def _not_fixed(cls, value: dict[str, Any]) -> dict[str, Any]:
        fixed = [k for k in value if k in _FIXED_TRAIN_FIELDS]
        if fixed:
            raise ValueError(f"budget.train may not set {', '.join(fixed)} (the experiment sets it for every arm)")
        return value


class JudgesConfig(_Config):
    """The reward judge (training) and the evaluation judge. ``eval`` unset means "a model other than
    the reward judge": the embedded model when the reward judge is something else; when the reward
    judge *is* the embedded model, name an evaluation judge (or ``same-as-reward``, warned)."""

    reward: BackendConfig = Field(default=BackendConfig(kind="embedded", parallel_sequences=32))
    eval: BackendConfig | Literal["same-as-reward"] | None = Field(default=None)


class EvalSection(_Config):
    """What every arm is evaluated on: the held-out splits of one arm's mixture (the baseline's by
    default) less every row any arm trained on, and the external suites."""

    splits_from: str | None = Field(default=None, description="arm whose mixture's held-out splits are evaluated; default: the baseline")
    splits: list[str] = Field(default_factory=list, description="splits to evaluate; default: every held-out split")
    max_rows: int | None = Field(default=None, ge=1, description="first N rows of each split")
    suites: list[str] = Field(default_factory=list, description="external suites (files or Hub ids), as `eval --suite`")
    answer_sampling: AnswerSampling = Field(default=AnswerSampling())
    refusal: RefusalMethod = "pattern"
    bootstrap: int = Field(default=2000, ge=100, le=1_000_000)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    min_pairs: int = Field(default=5, ge=2)
    fdr_q: float = Field(default=0.05, gt=0.0, lt=1.0)
    seed: int = Field(default=0, ge=0)


class ExperimentConfig(_Config):
    """One experiment: ``scenario-forge experiment FILE.yaml`` and the Prefect ``experiment`` flow's parameter."""

    name: str = Field(description="the experiment's name (report title)")
    runs: list[Path] = Field(min_length=1, description="run folders every arm mixes from")
    arms: list[ArmConfig] = Field(min_length=2, description="the arms; one is the baseline")
    baseline: str = Field(description="the arm every other arm is compared against")
    policy: str = Field(default="embedded", description="starting policy of every arm: 'embedded', a .gguf file or a Hugging Face folder")
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    judges: JudgesConfig = Field(default_factory=JudgesConfig)
    mix: dict[str, Any] = Field(default_factory=dict, description="MixConfig fields shared by every arm (seed, total_rows, spread, base, ...)")
    eval: EvalSection = Field(default_factory=EvalSection)
    out: Path = Field(default=Path("outputs/experiment"), description="the experiment folder (arms/<name>/..., experiment.md)")
    strict: bool = Field(
        default=False,
        description="refuse, before any training, what is otherwise a warning: a non-baseline arm whose drawn "
        "prompts hold no beneficial row (`scenario-forge experiment --strict`)",
    )

    @field_validator("name")
    @classmethod
    def _plain(cls, value: str) -> str:
        return _label(value)

    @field_validator("mix")
    @classmethod
    def _not_per_arm(cls, value: dict[str, Any]) -> dict[str, Any]:
        fixed = [k for k in value if k in _ARM_MIX_FIELDS]
        if fixed:
            raise ValueError(f"mix may not set {', '.join(fixed)} (the experiment sets it per arm)")
        return value

    @model_validator(mode="after")
    def _arms(self) -> ExperimentConfig:
        names = [a.name for a in self.arms]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"arm name(s) {', '.join(twice)} used twice")
        if self.baseline not in names:
            raise ValueError(f"baseline {self.baseline!r} is not one of the arms ({', '.join(names)})")
        if self.eval.splits_from is not None and self.eval.splits_from not in names:
            raise ValueError(f"eval.splits_from {self.eval.splits_from!r} is not one of the arms ({', '.join(names)})")
        b = self.budget
        if (b.batch_size * b.gradient_accumulation_steps) % b.num_generations:
            raise ValueError(
                f"budget: batch_size x gradient_accumulation_steps ({b.batch_size} x {b.gradient_accumulation_steps}) "
                f"must be divisible by num_generations ({b.num_generations})"
            )
        return self

    @property
    def baseline_arm(self) -> ArmConfig:
        return next(a for a in self.arms if a.name == self.baseline)

    def ordered_arms(self) -> list[ArmConfig]:
        """The baseline first (every other arm's evaluation reuses its grades), then the rest in file order."""
        return [self.baseline_arm] + [a for a in self.arms if a.name != self.baseline]

    def arm_dir(self, arm: str) -> Path:
        return self.out / "arms" / arm


def load_experiment(path: Path) -> ExperimentConfig:
    """The experiment in ``path`` (YAML, ``safe_load``): a one-line :class:`ConfigError` naming the
    file if it is missing, not YAML, not a mapping, or not a valid experiment."""
    from pydantic import ValidationError

    from .._validation import one_line

    if not path.is_file():
        raise ConfigError(f"experiment file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: malformed YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of experiment fields")
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(one_line(exc, str(path))) from None
