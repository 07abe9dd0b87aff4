"""Typed configuration for ``scenario-forge eval``; also the Prefect ``evaluate`` flow's parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..config import BackendConfig, SamplingParams
from ..flags import flag, group
from ..grading.config import GradingConfig

RefusalMethod = Literal["pattern", "judge"]

class AnswerSampling(SamplingParams):
    """How answers are sampled: greedy by default (reproducible), with a repeat penalty (small
    local models loop without one). A subclass so a partial YAML/flag override keeps these defaults."""

    temperature: float = Field(
        default=0.0, ge=0.0, le=2.0, description="answer sampling temperature (0: greedy)", json_schema_extra=flag("--temperature")
    )
    max_tokens: int = Field(default=256, ge=1, le=8192, description="max new tokens per answer", json_schema_extra=flag("--max-tokens"))


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mixture: Path = Field(description="mixture folder whose held-out splits are evaluated", json_schema_extra=flag("--mixture"))
    splits: list[str] = Field(
        default_factory=list, description="splits to evaluate; default: every held-out split (heldout*, persistence_*)",
        json_schema_extra=flag("--split", "--splits"),
    )
    max_rows: int | None = Field(default=None, ge=1, description="evaluate the first N rows of each split only", json_schema_extra=flag("--max-rows"))
    suites: list[str] = Field(
        default_factory=list,
        description="external evaluation suites: a JSONL/JSON/Parquet file or a Hugging Face dataset id ORG/NAME[:SPLIT] "
        "(repeatable; shapes in suites/README.md)",
        json_schema_extra=flag("--suite"),
    )
    model: BackendConfig | None = Field(
        default=None, description="the model under evaluation (required; the train -> eval flow fills in the trained model)"
    )
    model_label: str = Field(
        default="model", min_length=1, max_length=40, description="name of the model in the report", json_schema_extra=flag("--model-label")
    )
    baseline: BackendConfig | None = Field(default=None, description="a second model, answered and graded the same way")
    baseline_grades: Path | None = Field(
        default=None, description="a previous eval's output folder: its model's grades are the baseline"
    )
    baseline_label: str = Field(
        default="baseline", min_length=1, max_length=40, description="name of the baseline in the report",
        json_schema_extra=flag("--baseline-label"),
    )
    judge: BackendConfig = Field(
        default=BackendConfig(kind="embedded", parallel_sequences=32), description="grades rubric and generic rows",
        json_schema_extra=group("judge", only=["kind", "model", "base_url"]),
    )
    grading: GradingConfig = Field(default_factory=GradingConfig, description="how the rubric judge is asked (form, tokens, retries)")
    require_qualified_judge: bool = Field(
        default=False, description="refuse to start unless the judge passed `scenario-forge judge check` (macro-F1 >= 0.7)",
        json_schema_extra=flag("--require-qualified-judge"),
    )
    answer_sampling: AnswerSampling = Field(
        default=AnswerSampling(), description="how answers are sampled", json_schema_extra=group(only=["max_tokens", "temperature"])
    )
    refusal: RefusalMethod = Field(default="pattern", description="how refusals are detected (docs/evaluation.md)", json_schema_extra=flag("--refusal"))
    trained_domains: list[str] | None = Field(
        default=None,
        description="domains the model was trained on; the others are its transfer domains. "
        "Default: read from the mixture (the domains of its beneficial training rows, mixture.json)",
        json_schema_extra=flag("--trained-domain"),
    )
    bootstrap: int = Field(default=2000, ge=100, le=1_000_000, description="bootstrap resamples for the CIs", json_schema_extra=flag("--bootstrap"))
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    min_pairs: int = Field(default=5, ge=2, description="fewest paired rows for a better/worse verdict")
    fdr_q: float = Field(
        default=0.05, gt=0.0, lt=1.0, description="false discovery rate of the Benjamini-Hochberg correction over a report's evals",
        json_schema_extra=flag("--fdr-q"),
    )
    seed: int = Field(default=0, ge=0, description="answer sampling and bootstrap seed", json_schema_extra=flag("--seed"))
    out: Path = Field(default=Path("outputs/eval"), description="report folder", json_schema_extra=flag("--out"))

    @field_validator("model_label", "baseline_label")
    @classmethod
    def _plain_label(cls, value: str) -> str:
        if not value.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ValueError(f"label {value!r} may hold only letters, digits, '-', '_' and '.'")
        return value

    @model_validator(mode="after")
    def _one_baseline(self) -> EvalConfig:
        if self.baseline is not None and self.baseline_grades is not None:
            raise ValueError("give a baseline model or a previous eval's grades, not both")
        if self.model_label == self.baseline_label:
            raise ValueError("model_label and baseline_label must differ")
        return self

    @property
    def has_baseline(self) -> bool:
        return self.baseline is not None or self.baseline_grades is not None
