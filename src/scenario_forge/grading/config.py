"""How the rubric judge is asked: the verdict's form, its token budget and the retries.

``output`` picks the form of the judge's reply (see ``prompts/grade_criterion.j2``):

- ``json``: HealthBench's form, ``{"explanation": ..., "criteria_met": true|false}``, decoded
  against a JSON schema (only on backends that enforce one);
- ``explain``: a short explanation, then the verdict alone on the last line (``YES``/``NO``);
- ``short``: the verdict only (one word);
- ``auto`` (default): ``json`` where the backend enforces a schema, else ``short`` for the embedded
  135M judge (on 42 calibration items: macro-F1 0.42 and 17% unscoreable, vs 0.37 and 45% with
  ``explain``, which it seldom ends on a YES/NO line; docs/evaluation.md) and ``explain`` for every
  other backend.

An unscoreable verdict (no clear YES/NO, invalid JSON, a failed request) is asked again up to
``retries`` times with a new seed at ``retry_temperature``; a criterion still unscoreable after that
makes the whole answer unscoreable (score ``None``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..config import BackendConfig, SamplingParams
from ..flags import flag, group

OutputForm = Literal["auto", "json", "explain", "short"]
#: JSON schema of a verdict in the ``json`` form (HealthBench's fields).
VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"explanation": {"type": "string"}, "criteria_met": {"type": "boolean"}},
    "required": ["explanation", "criteria_met"],
}


class GradingConfig(BaseModel):
    """The rubric judge's settings (``train``, ``eval``, ``mix`` and ``judge check`` share them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    output: OutputForm = Field(default="auto", description="verdict form (auto: by backend, see above)", json_schema_extra=flag("--output"))
    max_tokens: int = Field(
        default=256, ge=16, le=4096, description="token budget of an explanation (json, explain)", json_schema_extra=flag("--max-tokens")
    )
    short_max_tokens: int = Field(default=8, ge=1, le=64, description="token budget of a one-word verdict (short)")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="first attempt's temperature")
    retries: int = Field(
        default=2, ge=0, le=10, description="times an unscoreable verdict is asked again", json_schema_extra=flag("--retries")
    )
    retry_temperature: float = Field(default=0.7, gt=0.0, le=2.0, description="temperature of the retries")

    def form_for(self, kind: str, supports_json_schema: bool) -> Literal["json", "explain", "short"]:
        """The concrete form for a backend of ``kind``.

        >>> GradingConfig().form_for("openai", True), GradingConfig().form_for("openai", False)
        ('json', 'explain')
        >>> GradingConfig().form_for("embedded", False), GradingConfig(output="explain").form_for("embedded", False)
        ('short', 'explain')
        """
        if self.output == "json" or (self.output == "auto" and supports_json_schema):
            return "json"
        if self.output == "auto":
            return "short" if kind == "embedded" else "explain"
        return self.output

    def sampling(self, form: str, retry: bool = False) -> SamplingParams:
        """Sampling for one attempt: the short form stops at the first newline; the others do not."""
        temperature = self.retry_temperature if retry else self.temperature
        if form == "short":
            return SamplingParams(temperature=temperature, top_p=0.95, max_tokens=self.short_max_tokens,
                                  repeat_penalty=1.0, stop=["\n"])
        return SamplingParams(temperature=temperature, top_p=0.95, max_tokens=self.max_tokens, repeat_penalty=1.05)


class JudgeCheckConfig(BaseModel):
    """``scenario-forge judge check``: which judge is qualified against which hand-labelled items."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    items: Path | None = Field(
        default=None, description="calibration JSONL; default: the shipped labelled/judge_calibration.jsonl",
        json_schema_extra=flag("--items"),
    )
    judge: BackendConfig = Field(
        default=BackendConfig(kind="embedded", parallel_sequences=32), description="the judge under test",
        json_schema_extra=group("judge", only=["kind", "model", "base_url"]),
    )
    grading: GradingConfig = Field(
        default_factory=GradingConfig, description="how the judge is asked",
        json_schema_extra=group(only=["output", "max_tokens", "retries"]),
    )
    max_items: int | None = Field(
        default=None, ge=1, description="check the first N items only (the result is still stored)", json_schema_extra=flag("--max-items")
    )
    bootstrap: int = Field(default=1000, ge=100, description="bootstrap resamples for the CIs", json_schema_extra=flag("--bootstrap"))
    seed: int = Field(default=0, ge=0, description="bootstrap seed", json_schema_extra=flag("--seed"))
