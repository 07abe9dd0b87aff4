"""Typed configuration of ``scenario-forge publish`` (CLI options and the Prefect ``publish`` flow)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..flags import flag

#: The trainer formats a published dataset can carry as extra configs.
Export = Literal["trl", "verl"]


def _every_export() -> list[Export]:
    return ["trl", "verl"]


_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


class PublishConfig(BaseModel):
    """Where the data comes from (a run or a mixture folder), where the Hub-layout folder goes, and
    what the dataset card says."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Path = Field(description="a run folder (OUT/RUN_ID) or a mixture folder", json_schema_extra=flag(argument=True))
    local: Path | None = Field(default=None, description="write the Hub-layout folder here", json_schema_extra=flag("--local"))
    repo_id: str | None = Field(
        default=None, description="push to this Hugging Face dataset repo (ORG/NAME); token from HF_TOKEN or `hf auth login`",
        json_schema_extra=flag("--repo-id"),
    )
    private: bool = Field(default=False, description="make the Hub repo private (an existing public one too, before uploading)", json_schema_extra=flag("--private"))
    license: str = Field(
        default="apache-2.0", min_length=1, description="license id for the card (the data's, not the code's)",
        json_schema_extra=flag("--license"),
    )
    pretty_name: str | None = Field(default=None, description="dataset title on the card", json_schema_extra=flag("--pretty-name"))
    tags: list[str] = Field(default_factory=list, description="extra card tag (repeatable)", json_schema_extra=flag("--tag"))
    exports: list[Export] = Field(
        default_factory=_every_export, description="trainer format to add as a config (repeatable)",
        json_schema_extra=flag("--export"),
    )
    shard_rows: int = Field(
        default=500_000, ge=1, le=100_000_000, description="rows per parquet file", json_schema_extra=flag("--shard-rows")
    )
    overwrite: bool = Field(default=False, description="replace an existing --local folder", json_schema_extra=flag("--overwrite"))
    commit_message: str | None = Field(default=None, description="Hub commit message", json_schema_extra=flag("--commit-message"))
    strict: bool = Field(
        default=False, description="refuse a source that is not training-ready (default: warn and publish)", json_schema_extra=flag("--strict")
    )

    @field_validator("repo_id")
    @classmethod
    def _repo_id(cls, value: str | None) -> str | None:
        if value is not None and not _REPO_ID.match(value):
            raise ValueError(f"repo id {value!r} must look like ORG/NAME")
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value: Path | None) -> Path | None:
        if value is None:  # subclasses that fill the source in later (the end-to-end pipeline)
            return value
        if not value.is_dir():
            raise ValueError(f"not found: {value} (a run folder or a mixture folder)")
        if not (value / "mixture.json").is_file() and not (value / "scenarios.parquet").is_file():
            raise ValueError(f"{value} is neither a mixture folder (mixture.json) nor a run folder (scenarios.parquet)")
        return value

    @model_validator(mode="after")
    def _somewhere(self) -> PublishConfig:
        if self.local is None and self.repo_id is None:
            raise ValueError("say where to publish: --local DIR and/or --repo-id ORG/NAME")
        if self.local is not None:
            local, source = self.local.resolve(), self.source.resolve()
            if local == source or local in source.parents or source in local.parents:
                raise ValueError("--local must not be the source folder, hold it, or lie inside it")
        return self

    @property
    def kind(self) -> Literal["mixture", "run"]:
        return "mixture" if (self.source / "mixture.json").is_file() else "run"
