"""Typed configuration of ``scenario-forge mix`` (the CLI options and the Prefect ``mix`` flow's
parameters). A config that validates names a recipe that exists and whose domains, traits and
persona files are all good: bad input fails here, before any file is read or model loaded."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..config import BackendConfig, SamplingParams
from ..errors import ConfigError, ForgeError


def load_taxonomy_cached(folder: Path | None = None):
    """:func:`~scenario_forge.taxonomy.loader.load_taxonomy`, parsed once per folder and file
    versions (the YAML parse takes about a second; a mix validates its config several times)."""
    from ..resources import resource_dir

    root = Path(folder) if folder is not None else resource_dir("taxonomy")
    stamp = tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in root.glob("*.yaml"))) if root.is_dir() else ()
    return _load_taxonomy(str(root), stamp)


@lru_cache(maxsize=8)
def _load_taxonomy(root: str, stamp: tuple):
    from ..taxonomy.loader import load_taxonomy

    return load_taxonomy(root)


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SpreadConfig(_Config):
    """Rubrics fit for RL: sample ``k`` answers per training scenario from a policy, grade them with
    the rubric, and keep out of training the rubrics whose scores do not spread (GRPO learns
    nothing from a prompt whose answers all score the same)."""

    enabled: bool = Field(default=True, description="run the spread check (--no-spread-check turns it off)")
    k: int = Field(default=4, le=64, description="answers sampled per scenario (>= 2)")
    policy: BackendConfig = Field(default=BackendConfig(kind="embedded"), description="backend that writes the answers")
    judge: BackendConfig | None = Field(default=None, description="backend that grades them; default: the policy backend")
    sampling: SamplingParams = SamplingParams(temperature=1.0, top_p=0.95, max_tokens=96, repeat_penalty=1.1)
    min_spread: float = Field(default=0.0, ge=0.0, lt=1.0, description="flag a rubric whose score spread (max - min) is at most this")
    keep_flagged: bool = Field(default=False, description="keep flagged scenarios in training (they are still counted)")
    require_qualified_judge: bool = Field(
        default=False, description="refuse to start unless the judge passed `scenario-forge judge check` (macro-F1 >= 0.7)"
    )

    @field_validator("k")
    @classmethod
    def _at_least_two(cls, value: int) -> int:
        if value < 2:
            raise ValueError(
                f"the spread check needs at least 2 answers per scenario (got {value}); turn it off with --no-spread-check instead"
            )
        return value


class MixConfig(_Config):
    """Everything ``scenario-forge mix`` needs."""

    runs: list[Path] = Field(min_length=1, description="run folders (OUT/RUN_ID) or their scenarios.parquet files")
    recipe: str = Field(default="paper-5pct", description="built-in recipe name or recipe YAML file")
    out: Path = Field(description="mixture folder to write")
    base: str | None = Field(
        default=None,
        description="standard RL data: parquet/JSONL/CSV file, dataset folder or Hugging Face dataset id; "
        "default: the embedded verifiable-task generator",
    )
    base_split: str = Field(default="train", description="split of a dataset folder or hub id")
    base_prompt_column: str = Field(default="prompt", description="column with the prompt (text or chat messages)")
    base_answer_column: str | None = Field(default=None, description="column with the exact answer; default: 'answer' if present")
    base_task_column: str | None = Field(default=None, description="column naming each row's task")
    seed: int | None = Field(default=None, ge=0, description="overrides the recipe's seed")
    total_rows: int | None = Field(default=None, ge=1, description="overrides the recipe's total_rows")
    heldout_domains: list[str] | None = Field(default=None, description="overrides the recipe's held-out domains")
    heldout_traits: list[str] | None = Field(default=None, description="overrides the recipe's held-out traits")
    allow_smaller: bool = Field(default=False, description="build a smaller mixture (same exact ratio) when rows run short")
    overwrite: bool = Field(default=False, description="replace an existing mixture in --out")
    strict: bool = Field(
        default=False,
        description="refuse inputs that are not training-ready, and a recipe whose persistence probes find no "
        "held-out scenario (default: warn and mix)",
    )
    taxonomy: Path | None = Field(default=None, description="taxonomy folder; default: the shipped one")
    prompts: Path | None = Field(default=None, description="prompt templates folder; default: the shipped one")
    embedding_model: str | None = Field(default=None, description="sentence-transformers folder for the contamination guard")
    threshold: float = Field(default=0.9, gt=0.0, le=1.0, description="cosine similarity at which train and held-out rows are near-duplicates")
    cache_dir: Path | None = Field(default=None, description="embedding and spread-check caches; default: RUNS_PARENT/.cache")
    shuffle_limit: int = Field(
        default=2_000_000, ge=0, description="standard rows are shuffled when at most this many; above it they keep base order"
    )
    spread: SpreadConfig = SpreadConfig()

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
        # Load the recipe, its personas and the taxonomy now, so a bad name fails in a second.
        try:
            self.resolved_recipe()
        except ForgeError as exc:
            raise ValueError(str(exc)) from None
        return self

    def scenario_files(self) -> list[Path]:
        return [p if p.is_file() else p / "scenarios.parquet" for p in self.runs]

    def resolved_recipe(self):  # -> tuple[ResolvedRecipe, Path, dict]
        """The recipe (seed and totals overridden), resolved against the taxonomy, and its personas."""
        from ..taxonomy.loader import resolve_domains
        from .personas import load_persona
        from .recipes import load_recipe, resolve_recipe

        recipe, path = load_recipe(self.recipe)
        updates = {}
        if self.seed is not None:
            updates["seed"] = self.seed
        if self.total_rows is not None:
            updates["total_rows"] = self.total_rows
        if updates:
            recipe = recipe.model_copy(update=updates)
        taxonomy = load_taxonomy_cached(self.taxonomy)
        resolved = resolve_recipe(recipe, taxonomy, self.heldout_domains, self.heldout_traits)
        personas = {}
        if recipe.persistence is not None:
            for variant in ("harmful", "helpful"):
                persona, persona_file = load_persona(getattr(recipe.persistence, variant), variant, path.parent)
                try:
                    domains = resolve_domains(taxonomy, persona.domains) if persona.domains else []
                except ForgeError as exc:
                    raise ConfigError(f"persona {persona_file}: {exc}") from None
                personas[variant] = persona.model_copy(update={"domains": domains})
        return resolved, path, personas

    def cache_root(self) -> Path:
        return self.cache_dir or self.scenario_files()[0].parent.parent / ".cache"
