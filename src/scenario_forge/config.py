"""Typed configuration: the CLI options and the Prefect flow parameters are built from these.

A config that validates is a run that can start: unknown domains or traits, ``n <= 0`` and
similar mistakes fail here, before any model is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from .errors import ForgeError
from .flags import flag, group
from .redact import is_secret

if TYPE_CHECKING:
    from .taxonomy.loader import TaxonomySelection

#: ``fake`` is a deterministic offline backend that writes placeholder text: for tests and for
#: measuring orchestration overhead, never for data.
BackendKind = Literal["embedded", "llamacpp", "openai", "vllm", "transformers", "distilabel", "fake"]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SamplingParams(_Config):
    """Sampling for one kind of request. ``repeat_penalty`` maps to each engine's own knob."""

    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(default=160, ge=1, le=8192)
    repeat_penalty: float = Field(default=1.15, ge=1.0, le=2.0)
    stop: list[str] = Field(default_factory=list)


#: Role labels at a line start: a small model that writes one turn often goes on to script the next.
TURN_STOPS = ["\nYOU:", "\nUSER:", "\nASSISTANT:", "\nUser:", "\nAssistant:", "\nYou:"]


class StageSampling(_Config):
    """Per-request-kind sampling. Defaults suit small local models (short outputs, a repeat
    penalty); a strong model behind the same prompts does well with them too."""

    brief: SamplingParams = SamplingParams(temperature=0.7, max_tokens=72, stop=["\n"])
    # A turn ends at a blank line or where the model starts writing the next speaker's line.
    user_turn: SamplingParams = SamplingParams(temperature=0.8, max_tokens=90, stop=["\n\n", *TURN_STOPS])
    assistant_turn: SamplingParams = SamplingParams(temperature=0.7, max_tokens=110, stop=["\n\n", *TURN_STOPS])
    operator: SamplingParams = SamplingParams(temperature=0.7, max_tokens=90, stop=["\n\n"])
    rubric: SamplingParams = SamplingParams(temperature=0.6, max_tokens=64, stop=["\n"])
    rubric_json: SamplingParams = SamplingParams(temperature=0.6, max_tokens=700)
    brief_json: SamplingParams = SamplingParams(temperature=0.7, max_tokens=400)
    judge: SamplingParams = SamplingParams(temperature=0.0, max_tokens=48, repeat_penalty=1.0)
    answer: SamplingParams = SamplingParams(temperature=0.9, max_tokens=160)

    def as_dict(self) -> dict[str, dict[str, float | int | list[str] | None]]:
        return {k: v.model_dump() for k, v in self}

#: Which generation path ``generate`` takes (``GenerateConfig.path``, docs/generation.md).
GenerationPath = Literal["auto", "capable", "short"]


class CapableSampling(_Config):
    """Sampling for the capable path's requests (:mod:`scenario_forge.generation.capable`): long JSON
    replies for understanding, ideation and the rubric, free-text conversation turns."""

    understanding: SamplingParams = SamplingParams(temperature=0.4, max_tokens=500, repeat_penalty=1.0)
    ideation: SamplingParams = SamplingParams(temperature=0.9, max_tokens=2400, repeat_penalty=1.0)
    user_turn: SamplingParams = SamplingParams(temperature=0.8, max_tokens=200, repeat_penalty=1.05, stop=["\n\n", *TURN_STOPS])
    assistant_turn: SamplingParams = SamplingParams(temperature=0.7, max_tokens=260, repeat_penalty=1.05, stop=TURN_STOPS)
    rubric: SamplingParams = SamplingParams(temperature=0.4, max_tokens=1400, repeat_penalty=1.0)


class CapableConfig(_Config):
    """Settings of the capable path (understanding, ideation, rollout, rubric from the dialogue)."""

    ideas_per_call: int = Field(default=6, ge=1, le=32, description="most ideas asked for in one ideation call (a cell with more seeds in a shard takes several)")
    idea_threshold: float = Field(default=0.85, gt=0.0, le=1.0, description="cosine similarity at which an idea is a near-duplicate of one kept before it")
    json_retries: int = Field(default=2, ge=0, le=5, description="times a JSON reply that does not validate is asked again (with the error) before a counted reject")
    rollout_workers: int = Field(default=32, ge=1, le=1024, description="scenarios rolled out side by side, each advancing as soon as its own request returns")
    sampling: CapableSampling = CapableSampling()


def _stored(info: ValidationInfo) -> bool:
    """Whether this config is being read back from a stored record (``model_validate(...,
    context={"stored": True})``): then it is data, and nothing it names is imported or opened."""
    return bool(isinstance(info.context, dict) and info.context.get("stored"))


class BackendConfig(_Config):
    """Which model runtime serves generation requests, and how to reach it."""

    kind: BackendKind = Field(
        default="embedded",
        description="backend; when not given, inferred from the model spec (docs/models.md)",
        json_schema_extra=flag("--backend"),
    )
    model: str | None = Field(
        default=None,
        description="model spec: 'embedded', a .gguf file, a Hugging Face model folder or id, a server model name "
        "(with a base URL) or KIND:MODEL (docs/models.md)",
        json_schema_extra=flag("--model"),
    )
    base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible server URL, e.g. http://127.0.0.1:8000/v1; give it again for more servers "
        "serving the same model (each request goes to the one with the fewest in flight)",
        json_schema_extra=flag("--base-url", multiple=True),
    )
    base_urls: list[str] = Field(
        default_factory=list,
        description="every server when several serve the same model (base_url is the first); empty for one server",
    )
    api_key_env: str = Field(
        default="OPENAI_API_KEY", description="environment variable holding the API key", json_schema_extra=flag("--api-key-env")
    )
    concurrency: int = Field(default=4, ge=1, le=1024, description="requests in flight (openai backend)", json_schema_extra=flag("--concurrency"))
    timeout_s: float = Field(default=120.0, gt=0, description="seconds to wait for one answer (openai backend)", json_schema_extra=flag("--timeout"))
    max_retries: int = Field(
        default=4, ge=0, le=20, description="retries on 429/5xx/connection errors (openai backend)", json_schema_extra=flag("--max-retries")
    )
    parallel_sequences: int = Field(
        default=32, ge=1, le=256, description="sequences decoded together in one batch (embedded/llamacpp)",
        json_schema_extra=flag("--parallel"),
    )
    n_ctx: int = Field(default=2048, ge=512, description="context per sequence (embedded/llamacpp)")
    n_threads: int | None = Field(default=None, ge=1)
    structured_output: Literal["auto", "off"] = Field(
        default="auto", description="JSON-schema decoding where the backend supports it", json_schema_extra=flag("--structured-output")
    )
    llm: str | None = Field(
        default=None,
        description="distilabel LLM class: a name in distilabel.models.llms (LlamaCppLLM, OpenAILLM, vLLM, ...) "
        "or an import path package.module.Class (distilabel backend)",
        json_schema_extra=flag("--llm"),
    )
    llm_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description='JSON object of arguments for the distilabel LLM class, e.g. \'{"model_path": "m.gguf", "n_ctx": 4096}\'',
        json_schema_extra=flag("--llm-kwargs"),
    )
    max_model_len: int | None = Field(
        default=None, ge=64, description="vLLM's context length, prompt and reply (vllm backend); default: the model's own",
        json_schema_extra=flag("--max-model-len"),
    )
    engine_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON object of further vllm.LLM(...) arguments (vllm backend), e.g. "
        '\'{"tensor_parallel_size": 2, "gpu_memory_utilization": 0.85}\'',
        json_schema_extra=flag("--engine-kwargs"),
    )

    @property
    def servers(self) -> list[str]:
        """Every server URL of the openai backend (one, or ``base_urls``).

        >>> BackendConfig(kind="openai", base_url=["http://a:8000/v1", "http://b:8000/v1"]).servers
        ['http://a:8000/v1', 'http://b:8000/v1']
        >>> BackendConfig(kind="openai", base_url="http://a:8000/v1").base_urls
        []
        """
        return list(self.base_urls) if self.base_urls else [self.base_url] if self.base_url else []

    @field_validator("llm_kwargs", "engine_kwargs", mode="before")
    @classmethod
    def _json_object(cls, value: object) -> object:
        # the command line gives a JSON string; a YAML file gives a mapping
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos}); give a JSON object") from None
        if not isinstance(value, dict):
            raise ValueError(f"must be a JSON object ({{...}}), got {type(value).__name__}")  # noqa: TRY004 - pydantic reports ValueError, not TypeError
        return value

    @field_validator("llm")
    @classmethod
    def _llm_class(cls, value: str | None, info: ValidationInfo) -> str | None:
        # the class must exist and be a distilabel LLM before anything loads (distilabel imports here).
        # A config read back from a run's manifest (context {"stored": True}) is data: nothing it
        # names is imported until that backend is actually built.
        if value is not None and not _stored(info):
            from .backends.distilabel_backend import resolve_llm_class

            try:
                resolve_llm_class(value)
            except ForgeError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("llm_kwargs")
    @classmethod
    def _llm_arguments(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # the class's own argument checks (a missing model file, an unknown argument), nothing loaded
        llm = info.data.get("llm")
        if llm and not _stored(info):
            from .backends.distilabel_backend import check_llm

            try:
                check_llm(llm, value)
            except ForgeError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _infer_kind(cls, data: object) -> object:
        # --base-url given several times: the first is base_url, all of them base_urls (one stays a string)
        if isinstance(data, dict) and isinstance(data.get("base_url"), (list, tuple)):
            urls = [str(u) for u in data["base_url"]]
            data = {**data, "base_url": urls[0] if urls else None}
            data["base_urls"] = urls if len(urls) > 1 else []
        if isinstance(data, dict) and data.get("base_urls") and not data.get("base_url"):
            data = {**data, "base_url": data["base_urls"][0]}
        # An --llm class names the distilabel backend.
        if isinstance(data, dict) and data.get("kind") is None and data.get("llm"):
            data = {**data, "kind": "distilabel"}
        # No kind given: the model spec names it (one parser for every command, docs/models.md).
        if isinstance(data, dict) and data.get("kind") is None and (data.get("model") or data.get("base_url")):
            from .modelspec import parse_model_spec

            try:
                kind, model = parse_model_spec(data.get("model"), base_url=data.get("base_url"))
            except ForgeError as exc:
                raise ValueError(str(exc)) from None
            data = {**data, "kind": kind, "model": model}
        return data

    @model_validator(mode="after")
    def _needs(self) -> BackendConfig:
        if self.base_urls:
            if self.base_url != self.base_urls[0]:
                raise ValueError("base_url must be the first of base_urls (or give only base_urls)")
            repeated = sorted({u for u in self.base_urls if self.base_urls.count(u) > 1})
            if repeated:
                raise ValueError(f"--base-url given twice: {', '.join(repeated)}")
            if self.kind != "openai":
                raise ValueError(f"several --base-url servers are for the openai backend, not {self.kind}")
        if self.kind == "openai" and not self.base_url:
            raise ValueError("the openai backend needs --base-url")
        if self.kind in ("llamacpp", "vllm", "transformers") and not self.model:
            raise ValueError(f"the {self.kind} backend needs --model")
        if self.kind == "distilabel" and not self.llm:
            raise ValueError("the distilabel backend needs --llm CLASS (e.g. LlamaCppLLM)")
        for key in ("model", "max_model_len", "structured_output"):
            if key in self.engine_kwargs:
                raise ValueError(f"--engine-kwargs may not set {key!r}: use --{key.replace('_', '-')}")
        if "llm" in self.engine_kwargs:
            raise ValueError("--engine-kwargs may not set 'llm'")
        secrets = sorted(key for key in self.engine_kwargs if is_secret(key))
        if secrets:
            raise ValueError(
                f"--engine-kwargs may not hold credentials ({', '.join(secrets)}): the config is written to "
                "manifest.json; set them in the environment instead (e.g. HF_TOKEN)"
            )
        return self


class ReadinessThresholds(_Config):
    """When a run's data is training-ready (see ``docs/curation.md``): every check must pass.

    A figure that could not be measured fails its check. The flaw check applies only to runs with
    flawed-turn scenarios; the judge check only where a qualification record exists, unless
    ``require_qualified_judge``."""

    min_kept_lint_pass_rate: float = Field(default=1.0, ge=0.0, le=1.0, description="share of kept rows that pass every lint detector")
    min_kept: int = Field(default=10, ge=1, description="fewest kept scenarios")
    min_kept_rate: float = Field(default=0.5, ge=0.0, le=1.0, description="fewest kept / planned")
    max_mean_cosine: float = Field(default=0.6, gt=0.0, le=1.0, description="highest mean pairwise cosine of the kept scenarios' embeddings")
    min_rubric_specificity: float = Field(default=0.5, ge=0.0, le=1.0, description="lowest share of criteria naming something concrete from the conversation")
    min_flaw_standing_rate: float = Field(default=0.8, ge=0.0, le=1.0, description="lowest share of flawed-turn scenarios whose flaw stands")
    require_qualified_judge: bool = Field(default=False, description="fail the verdict when the judge has no qualification record")


class CurationConfig(_Config):
    """Quality gates, the LLM judge and near-duplicate removal (``generate`` and ``curate``)."""

    embedding_model: str | None = Field(
        default=None, description="sentence-transformers model folder; default: the packaged all-MiniLM-L6-v2",
        json_schema_extra=flag("--embedding-model"),
    )
    threshold: float = Field(
        default=0.9, gt=0.0, le=1.0, description="cosine similarity at which two scenarios are near-duplicates",
        json_schema_extra=flag("--threshold"),
    )
    judge: bool = Field(
        default=True, description="LLM judge quality gate (realism, tests-trait, gradability) and sign checks",
        json_schema_extra=flag("--judge/--no-judge"),
    )
    judge_backend: BackendConfig | None = Field(
        default=None, description="default: the generation backend",
        json_schema_extra=group("judge", only=["kind", "model", "base_url"]),
    )
    judge_threshold: float = Field(
        default=2.0, ge=1.0, le=5.0, description="minimum mean judge score (1-5) to keep", json_schema_extra=flag("--judge-threshold")
    )
    keep_unscoreable: bool = Field(
        default=True, description="keep scenarios the judge could not score (they are counted)",
        json_schema_extra=flag("--keep-unscoreable/--drop-unscoreable"),
    )
    judge_sampling: SamplingParams = Field(
        default=SamplingParams(temperature=0.0, max_tokens=8, repeat_penalty=1.0, stop=["\n"]),
        description="sampling for the quality judge (its verdicts are cached when temperature is 0)",
    )
    sign_checks: bool = Field(
        default=True, description="check each rubric criterion's sign with the judge; drop clear mismatches",
        json_schema_extra=flag("--sign-checks/--no-sign-checks"),
    )
    min_turn_words: int = Field(default=4, ge=1, description="shortest allowed turn, in words", json_schema_extra=flag("--min-turn-words"))
    max_turn_words: int = Field(default=180, ge=10, description="longest allowed turn, in words", json_schema_extra=flag("--max-turn-words"))
    answer_overlap: float = Field(
        default=0.6, gt=0.0, le=1.0,
        description="rubric leak: share of a criterion's word 3-grams a user or system turn may not repeat together with its verb",
    )
    cross_run: bool = Field(
        default=True, description="also drop near-duplicates of scenarios kept by earlier runs in the same store",
        json_schema_extra=flag("--cross-run/--no-cross-run"),
    )
    prompts: Path | None = Field(default=None, description="folder with judge_quality.j2 and sign_check.j2; default: the shipped prompts")
    figures: bool = Field(
        default=True, description="draw the report's PNG figures (report.md is always written)", json_schema_extra=flag("--figures/--no-figures")
    )
    readiness: ReadinessThresholds = Field(default=ReadinessThresholds(), description="thresholds of the training-ready verdict")

    @field_validator("embedding_model")
    @classmethod
    def _model_folder(cls, value: str | None) -> str | None:
        # A wrong path fails with the config, before anything is generated or loaded.
        if value is not None:
            from .curation.embed import check_model_folder

            try:
                check_model_folder(value)
            except ForgeError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _ordered(self) -> CurationConfig:
        if self.min_turn_words > self.max_turn_words:
            raise ValueError("min_turn_words must not exceed max_turn_words")
        return self


class GenerateConfig(_Config):
    """Everything ``scenario-forge generate`` needs; also the Prefect ``generate`` flow's parameters."""

    domains: list[str] = Field(
        default_factory=list, description="domain id or alias (repeatable); default: all", json_schema_extra=flag("--domain", "-d")
    )
    traits: list[str] = Field(
        default_factory=list, description="trait id or alias (repeatable); default: all", json_schema_extra=flag("--trait", "-t")
    )
    n: int = Field(default=20, gt=0, le=10_000_000, description="number of scenarios to plan", json_schema_extra=flag("--n"))
    keep: int | None = Field(
        default=None, ge=1, le=10_000_000,
        description="generate until N scenarios pass curation (or --max-attempts is spent), re-planning replacements "
        "in the cells of the rejected ones; plans N in its first round (--n defaults to N)",
        json_schema_extra=flag("--keep"),
    )
    max_attempts: int | None = Field(
        default=None, ge=1, le=100_000_000,
        description="with --keep: most scenarios attempted over all rounds (default: 3 x --keep)",
        json_schema_extra=flag("--max-attempts"),
    )
    seed: int = Field(default=0, ge=0, description="plan and sampling seed", json_schema_extra=flag("--seed"))
    shard_size: int = Field(default=32, ge=1, le=100_000, description="scenarios per shard", json_schema_extra=flag("--shard-size"))
    shard_workers: int = Field(
        default=2, ge=1, le=256,
        description="shards generated concurrently in one process (their requests share the backend's batches)",
    )
    scenario_workers: int = Field(
        default=256, ge=1, le=4096,
        description="scenarios of one shard generated side by side on the short path, each sending its next request "
        "as soon as its own previous one returns (no stage or turn waits for the whole shard)",
        json_schema_extra=flag("--scenario-workers"),
    )
    taxonomy: Path | None = Field(
        default=None, description="taxonomy folder; default: the shipped one", json_schema_extra=flag("--taxonomy")
    )
    prompts: Path | None = Field(
        default=None, description="prompt templates folder; default: the shipped one", json_schema_extra=flag("--prompts")
    )
    out: Path = Field(default=Path("outputs"), description="output store; the run lands in OUT/RUN_ID", json_schema_extra=flag("--out"))
    run_id: str | None = Field(
        default=None, description="run folder name; default: derived from the config", json_schema_extra=flag("--run-id")
    )
    backend: BackendConfig = Field(default=BackendConfig(), description="the generation backend", json_schema_extra=group())
    sampling: StageSampling = StageSampling()
    path: GenerationPath = Field(
        default="auto",
        description="generation path: capable (understanding, ideation, rollout, rubric from the dialogue; JSON replies), "
        "short (short fields, any model); auto = capable when the backend takes JSON schemas and --structured-output is auto",
        json_schema_extra=flag("--path"),
    )
    capable: CapableConfig = Field(default=CapableConfig(), description="capable-path settings")
    turn_reasks: int = Field(
        default=2, ge=0, le=10,
        description="times a conversation turn that fails a turn-level lint detector is asked again (new seed) before the scenario is rejected",
        json_schema_extra=flag("--turn-reasks"),
    )
    curate: bool = Field(
        default=True, description="run curation (gates, judge, dedup, report) after generation", json_schema_extra=flag("--curate/--no-curate")
    )
    curation: CurationConfig = Field(
        default=CurationConfig(), description="curation settings",
        json_schema_extra=group(only=["threshold", "embedding_model", "judge"]),
    )

    @field_validator("run_id")
    @classmethod
    def _safe_run_id(cls, value: str | None) -> str | None:
        if value is not None and (not value or "/" in value or value.startswith(".")):
            raise ValueError(f"run id {value!r} must be a plain folder name")
        return value

    #: The taxonomy and the resolved domain and trait ids (set by the validator; not a field).
    _selection: TaxonomySelection | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _keep_plans_n(cls, data: Any) -> Any:
        # --keep N plans N scenarios in its first round: --n defaults to N (given both, they must agree).
        if isinstance(data, dict) and isinstance(data.get("keep"), int) and data["keep"] > 0 and data.get("n") is None:
            data = {**data, "n": data["keep"]}
        return data

    @model_validator(mode="after")
    def _keep_budget(self) -> GenerateConfig:
        if self.keep is None:
            if self.max_attempts is not None:
                raise ValueError("--max-attempts applies only with --keep N")
            return self
        if self.n != self.keep:
            raise ValueError(f"--n {self.n} and --keep {self.keep} disagree: --keep N plans N in its first round (leave --n out)")
        if self.max_attempts is not None and self.keep > self.max_attempts:
            raise ValueError(
                f"--keep {self.keep} is more than --max-attempts {self.max_attempts} allows "
                "(every kept scenario is one attempt): raise --max-attempts or lower --keep"
            )
        return self

    @property
    def attempt_budget(self) -> int | None:
        """With ``keep``: the most scenarios attempted over all rounds (``max_attempts``, default 3 x ``keep``)."""
        if self.keep is None:
            return None
        return self.max_attempts if self.max_attempts is not None else 3 * self.keep

    @model_validator(mode="after")
    def _names_exist(self) -> GenerateConfig:
        # Resolve names against the taxonomy now, so a bad --domain fails before any model loads;
        # the job plans from what is resolved here (see ``selection``). Pydantic runs this again
        # when a validated config is nested in another model: what is stored is kept then.
        try:
            self.selection  # noqa: B018 - resolves and stores
        except ForgeError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def selection(self) -> TaxonomySelection:
        """The taxonomy the validator loaded and the domain and trait ids it resolved.

        (Resolved again only where the config was built without validation or copied with other
        names, e.g. ``model_copy(update={"domains": ...})``.)"""
        from .taxonomy.loader import select, selection_names

        if self._selection is None or self._selection.names != selection_names(self.taxonomy, self.domains, self.traits):
            self._selection = select(self.taxonomy, self.domains, self.traits)
        return self._selection
