"""Typed configuration of ``scenario-forge mix`` (the CLI options and the Prefect ``mix`` flow's
parameters). A config that validates names a recipe that exists and whose domains, traits and
persona files are all good: bad input fails here, before any file is read or model loaded."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from ..config import BackendConfig, SamplingParams
from ..errors import ConfigError, ForgeError
from ..flags import flag, group
from .personas import Persona
from .recipes import ResolvedRecipe


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SpreadConfig(_Config):
    """Rubrics fit for RL: sample ``k`` answers per training scenario from a policy, grade them with
    the rubric, and keep out of training the rubrics whose scores do not spread (GRPO learns
    nothing from a prompt whose answers all score the same)."""

    enabled: bool = Field(
        default=True, description="sample answers and drop rubrics whose scores don't spread",
        json_schema_extra=flag("--spread-check/--no-spread-check"),
    )
    k: int = Field(default=4, le=64, description="answers sampled per scenario for the spread check (>= 2)", json_schema_extra=flag("--spread-k"))
    policy: BackendConfig = Field(default=BackendConfig(kind="embedded"), description="backend that writes the answers", json_schema_extra=group("policy", only=["kind", "model", "base_url"]))
    judge: BackendConfig | None = Field(default=None, description="backend that grades them; default: the policy backend", json_schema_extra=group("judge", only=["kind", "model", "base_url"]))
    sampling: SamplingParams = SamplingParams(temperature=1.0, top_p=0.95, max_tokens=96, repeat_penalty=1.1)
    min_spread: float = Field(default=0.0, ge=0.0, lt=1.0, description="flag a rubric whose score spread (max - min) is at most this")
    keep_flagged: bool = Field(default=False, description="keep flagged scenarios in training (they are still counted)", json_schema_extra=flag("--keep-flagged"))
    require_qualified_judge: bool = Field(
        default=False, description="refuse to start unless the judge passed `scenario-forge judge check` (macro-F1 >= 0.7)",
        json_schema_extra=flag("--require-qualified-judge"),
    )

    @field_validator("k")
    @classmethod
    def _at_least_two(cls, value: int) -> int:
        if value < 2:
            raise ValueError(
                f"the spread check needs at least 2 answers per scenario (got {value}); turn it off with --no-spread-check instead"
            )
        return value

    @property
    def grader(self) -> BackendConfig:
        """The backend that grades the sampled answers: ``judge``, else the policy backend."""
        return self.judge or self.policy


class TaxonomyRef(_Config):
    """Which taxonomy a mix resolved its names against (recorded in ``mixture.json``'s provenance)."""

    name: str
    version: str
    hash: str


class ResolvedMix(_Config):
    """What :class:`MixConfig`'s validator resolved, kept so the mix never resolves it again: the
    recipe (seed and totals overridden) with every name turned into taxonomy ids, the file it came
    from, its personas (domains resolved) and the taxonomy they were resolved against."""

    resolved: ResolvedRecipe
    recipe_file: Path
    personas: dict[str, Persona]
    taxonomy: TaxonomyRef


class MixConfig(_Config):
    """Everything ``scenario-forge mix`` needs. A config that validates carries its resolved recipe
    (:attr:`resolution`); build a changed config with ``model_validate``, not ``model_copy(update=...)``,
    so that it is resolved again."""

    _resolution: ResolvedMix | None = PrivateAttr(default=None)
    _resolved_from: tuple[object, ...] = PrivateAttr(default=())

    runs: list[Path] = Field(min_length=1, description="run folders (OUT/RUN_ID) or their scenarios.parquet files", json_schema_extra=flag(argument=True))
    recipe: str = Field(default="paper-5pct", description="built-in recipe name or recipe YAML file", json_schema_extra=flag("--recipe", "-r"))
    out: Path = Field(description="mixture folder to write", json_schema_extra=flag("--out"))
    base: str | None = Field(
        default=None,
        description="standard RL data: parquet/JSONL/CSV file, dataset folder or Hugging Face dataset id; "
        "default: the embedded verifiable-task generator",
        json_schema_extra=flag("--base"),
    )
    base_split: str = Field(default="train", description="split of a dataset folder or hub id", json_schema_extra=flag("--base-split"))
    base_prompt_column: str = Field(default="prompt", description="column with the prompt (text or chat messages)", json_schema_extra=flag("--base-prompt-column"))
    base_answer_column: str | None = Field(default=None, description="column with the exact answer; default: 'answer' if present", json_schema_extra=flag("--base-answer-column"))
    base_task_column: str | None = Field(default=None, description="column naming each row's task", json_schema_extra=flag("--base-task-column"))
    seed: int | None = Field(default=None, ge=0, description="overrides the recipe's seed", json_schema_extra=flag("--seed"))
    total_rows: int | None = Field(default=None, ge=1, description="overrides the recipe's total_rows", json_schema_extra=flag("--total"))
    heldout_domains: list[str] | None = Field(default=None, description="overrides the recipe's held-out domains", json_schema_extra=flag("--heldout-domain"))
    heldout_traits: list[str] | None = Field(default=None, description="overrides the recipe's held-out traits", json_schema_extra=flag("--heldout-trait"))
    allow_smaller: bool = Field(default=False, description="build a smaller mixture (same exact ratio) when rows run short", json_schema_extra=flag("--allow-smaller"))
    overwrite: bool = Field(default=False, description="replace an existing mixture in --out", json_schema_extra=flag("--overwrite"))
    strict: bool = Field(
        default=False,
        description="refuse inputs that are not training-ready, and a recipe whose persistence probes find no "
        "held-out scenario (default: warn and mix)",
        json_schema_extra=flag("--strict"),
    )
    taxonomy: Path | None = Field(default=None, description="taxonomy folder; default: the shipped one", json_schema_extra=flag("--taxonomy"))
    prompts: Path | None = Field(default=None, description="prompt templates folder; default: the shipped one", json_schema_extra=flag("--prompts"))
    embedding_model: str | None = Field(default=None, description="sentence-transformers folder for the contamination guard", json_schema_extra=flag("--embedding-model"))
    threshold: float = Field(default=0.9, gt=0.0, le=1.0, description="cosine similarity at which train and held-out rows are near-duplicates", json_schema_extra=flag("--threshold"))
    cache_dir: Path | None = Field(default=None, description="embedding and spread-check caches; default: RUNS_PARENT/.cache")
    shuffle_limit: int = Field(
        default=2_000_000, ge=0, description="standard rows are shuffled when at most this many; above it they keep base order"
    )
    spread: SpreadConfig = Field(default=SpreadConfig(), description="the spread check", json_schema_extra=group())

    @field_validator("runs")
    @classmethod
    def _runs_exist(cls, value: list[Path]) -> list[Path]:
        for path in value:
            if path.is_file() and path.suffix == ".parquet":
                continue
            if not path.exists():
                raise ValueError(f"run not found: {path}")
            if not (path / "scenarios.parquet").is_file():
                raise ValueError(f"{path} is not a run folder (no scenarios.parquet)")
        return value

    @model_validator(mode="after")
    def _recipe_resolves(self) -> MixConfig:
        # Load the recipe, its personas and the taxonomy now, so a bad name fails in a second; the
        # result is kept for the mix (the plan stage reads it, nothing resolves it again). Pydantic
        # runs this validator again whenever the config is a field of another model (the mix plan)
        # or a flow parameter: the same instance is not resolved twice.
        if self._resolution is not None and self._resolved_from == self._resolution_inputs():
            return self
        try:
            self._resolution = _resolve(self)
        except ForgeError as exc:
            raise ValueError(str(exc)) from None
        self._resolved_from = self._resolution_inputs()
        return self

    def _resolution_inputs(self) -> tuple[object, ...]:
        return (self.recipe, self.seed, self.total_rows, self.heldout_domains, self.heldout_traits, self.taxonomy)

    @property
    def resolution(self) -> ResolvedMix:
        """The recipe, personas and taxonomy the validator resolved."""
        if self._resolution is None:  # only a config built with model_construct() skips the validator
            raise ConfigError("this mix config was never validated; build it with MixConfig(...) or model_validate")
        if self._resolved_from != self._resolution_inputs():  # model_copy(update=...) skips it too
            raise ConfigError("this mix config was changed after validation; build the new one with model_validate")
        return self._resolution

    def scenario_files(self) -> list[Path]:
        return [p if p.is_file() else p / "scenarios.parquet" for p in self.runs]

    def cache_root(self) -> Path:
        return self.cache_dir or self.scenario_files()[0].parent.parent / ".cache"


def _resolve(config: MixConfig) -> ResolvedMix:
    """The recipe (seed and totals overridden), resolved against the taxonomy, and its personas."""
    from ..taxonomy.loader import load_taxonomy, resolve_domains, taxonomy_hash
    from .personas import load_persona
    from .recipes import load_recipe, resolve_recipe

    recipe, path = load_recipe(config.recipe)
    updates: dict[str, int] = {}
    if config.seed is not None:
        updates["seed"] = config.seed
    if config.total_rows is not None:
        updates["total_rows"] = config.total_rows
    if updates:
        recipe = recipe.model_copy(update=updates)
    taxonomy = load_taxonomy(config.taxonomy)
    resolved = resolve_recipe(recipe, taxonomy, config.heldout_domains, config.heldout_traits)
    personas: dict[str, Persona] = {}
    if recipe.persistence is not None:
        for variant in ("harmful", "helpful"):
            persona, persona_file = load_persona(getattr(recipe.persistence, variant), variant, path.parent)
            try:
                domains = resolve_domains(taxonomy, persona.domains) if persona.domains else []
            except ForgeError as exc:
                raise ConfigError(f"persona {persona_file}: {exc}") from None
            personas[variant] = persona.model_copy(update={"domains": domains})
    return ResolvedMix(
        resolved=resolved,
        recipe_file=path,
        personas=personas,
        taxonomy=TaxonomyRef(name=taxonomy.name, version=taxonomy.version, hash=taxonomy_hash(taxonomy)),
    )
