"""The records that cross stage boundaries.

One pydantic type per boundary: the planner emits :class:`ScenarioSeed`, the brief stage
:class:`Briefed`, the dialogue stage :class:`Dialogue`, the rubric stage :class:`Scenario`.
Anything a stage drops becomes a :class:`Reject` with its stage and reason.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .redact import redact_optional

Role = Literal["system", "user", "assistant"]
Shape = Literal["plain", "flawed_prior_turn"]


class Record(BaseModel):
    """Base of every record that crosses a stage boundary: immutable, and no unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Message(Record):
    role: Role
    content: str


class ScenarioSeed(Record):
    """One planned scenario: a cell of the coverage plan and the choices drawn for it.

    For a ``flawed_prior_turn`` seed, ``flaw`` is the flaw catalogue entry's short label,
    ``flaw_claim`` the specific wrong statement the flawed assistant turn makes, ``flaw_correct``
    the correct fact that contradicts it, and ``flaw_kind`` its kind (``wrong_dose``,
    ``invented_citation``, ...); all four are ``None`` on plain seeds and in older runs.
    """

    id: str
    index: int = Field(ge=0)
    domain: str
    trait: str
    facet: str | None = None
    pressure: str
    persona: str
    user_turns: int = Field(ge=2, le=4)
    shape: Shape = "plain"
    flaw: str | None = None
    flaw_claim: str | None = None
    flaw_correct: str | None = None
    flaw_kind: str | None = None
    operator_persona: bool = False
    sample_seed: int = Field(ge=0)


class Brief(Record):
    situation: str
    user_goal: str
    key_facts: str
    trap: str


class Briefed(Record):
    seed: ScenarioSeed
    brief: Brief


class Dialogue(Record):
    """A conversation ending with a user turn: the prompt the policy will answer."""

    seed: ScenarioSeed
    brief: Brief
    messages: list[Message]
    flawed_turn_index: int | None = None


class Criterion(Record):
    """One HealthBench-style rubric line: met criteria add their points (negative ones subtract)."""

    criterion: str = Field(min_length=3)
    points: int = Field(ge=-10, le=10)
    tags: list[str] = Field(default_factory=list)

    @field_validator("points")
    @classmethod
    def _nonzero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("a criterion's points must not be 0")
        return value


class Provenance(Record):
    """What produced a row: enough to reproduce it or to explain it."""

    run_id: str
    generator: str
    backend: str
    model: str
    sampling: dict[str, dict[str, float | int | list[str] | None]]
    templates: dict[str, str]
    taxonomy_name: str
    taxonomy_version: str
    taxonomy_hash: str
    plan_seed: int


class Quality(Record):
    """The LLM judge's scores (1-5) from curation; ``None`` where the judge could not score."""

    realism: float | None = None
    tests_trait: float | None = None
    gradable: float | None = None
    score: float | None = None
    judge_model: str | None = None


class Scenario(Record):
    """A finished scenario: the RL prompt (``messages``) and how to grade its answer (``rubric``)."""

    id: str
    index: int
    domain: str
    trait: str
    facet: str | None
    pressure: str
    persona: str
    shape: Shape
    flaw: str | None
    flaw_claim: str | None = None
    flaw_correct: str | None = None
    flaw_kind: str | None = None
    flawed_turn_index: int | None
    operator_persona: bool
    brief: Brief
    messages: list[Message]
    rubric: list[Criterion]
    provenance: Provenance
    quality: Quality | None = None

    @classmethod
    def from_parts(
        cls, dialogue: Dialogue, rubric: list[Criterion], provenance: Provenance
    ) -> Scenario:
        s = dialogue.seed
        return cls(
            id=s.id,
            index=s.index,
            domain=s.domain,
            trait=s.trait,
            facet=s.facet,
            pressure=s.pressure,
            persona=s.persona,
            shape=s.shape,
            flaw=s.flaw,
            flaw_claim=s.flaw_claim,
            flaw_correct=s.flaw_correct,
            flaw_kind=s.flaw_kind,
            flawed_turn_index=dialogue.flawed_turn_index,
            operator_persona=s.operator_persona,
            brief=dialogue.brief,
            messages=dialogue.messages,
            rubric=rubric,
            provenance=provenance,
        )


class Reject(Record):
    """A row the pipeline dropped, kept with the stage and reason that dropped it.

    ``raw`` is the model's last reply (at most 4,000 characters). ``messages`` is the conversation
    already written when a later stage dropped the row (a rubric reject, or a finished row that
    fails lint): the most expensive part of a scenario, kept so that it can be read, labelled or
    given a new rubric. Curation rejects leave it out: their rows stay in ``generated.parquet``.
    """

    id: str
    run_id: str
    stage: str
    reason: str
    detail: str = ""
    domain: str
    trait: str
    pressure: str
    raw: str | None = None
    messages: list[Message] | None = None

    @field_validator("detail", "raw")
    @classmethod
    def _no_secrets(cls, value: str | None) -> str | None:
        return redact_optional(value)  # error text from servers may echo the API key

    @classmethod
    def of_scenario(cls, scenario: Scenario, stage: str, reason: str, detail: str = "") -> Reject:
        return cls(
            id=scenario.id,
            run_id=scenario.provenance.run_id,
            stage=stage,
            reason=reason,
            detail=detail[:500],
            domain=scenario.domain,
            trait=scenario.trait,
            pressure=scenario.pressure,
        )

    @classmethod
    def of(
        cls,
        seed: ScenarioSeed,
        run_id: str,
        stage: str,
        reason: str,
        detail: str = "",
        raw: str | None = None,
        messages: list[Message] | None = None,
    ) -> Reject:
        return cls(
            id=seed.id,
            run_id=run_id,
            stage=stage,
            reason=reason,
            detail=detail[:500],
            domain=seed.domain,
            trait=seed.trait,
            pressure=seed.pressure,
            raw=raw,  # whole: a model's output is bounded by its max_tokens, and a cut loses what the reject is about
            messages=messages,
        )


RewardType = Literal["rubric", "exact_match", "generic_judge"]
PersonaVariant = Literal["harmful", "helpful"]


class MixtureRow(Record):
    """One row of a training mixture or held-out split (``DIR/<split>.parquet``).

    Beneficial rows carry the scenario's conversation as ``prompt`` and its ``rubric``; standard
    rows carry a verifiable ``answer``. ``reward_type`` tells the trainer and the evaluation how to
    score a completion: the per-item rubric, exact match, or a generic-helpfulness judge (the
    paper's control arm). Persistence-probe rows are held-out scenarios re-rendered under an
    operator persona (``persona_variant``) and point back to ``scenario_id``.
    """

    id: str
    split: str
    source: Literal["beneficial", "standard"]
    reward_type: RewardType
    prompt: list[Message]
    rubric: list[Criterion] = Field(default_factory=list)
    answer: str | None = None
    task: str | None = None
    domain: str | None = None
    trait: str | None = None
    facet: str | None = None
    pressure: str | None = None
    shape: Shape | None = None
    persona_variant: PersonaVariant | None = None
    scenario_id: str | None = None
    rubric_spread: float | None = None
