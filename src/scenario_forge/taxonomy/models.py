"""Pydantic models for the taxonomy files users edit (domains, traits, pressure tactics)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_ID = re.compile(r"^[a-z][a-z0-9_]*$")


def normalize_id(name: str) -> str:
    """Normalize a user-typed name to an id: ``"Risk-Sensitivity"`` -> ``"risk_sensitivity"``."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"id {value!r} must be lower snake_case (a-z, 0-9, _)")
    return value


#: The order :meth:`Persona.profile` lists attributes in; any other attribute follows, sorted.
PROFILE_ORDER = ("age", "role", "knows", "wants", "writes")


class Persona(_Strict):
    """Who writes the user turns: a one-line description and concrete attributes.

    ``attributes`` holds concrete facts the generator writes the user from: ``age``, ``role``,
    what they ``knows``, what they ``wants``, how they ``writes``; any other key is allowed.
    """

    id: str
    description: str = Field(min_length=3)
    attributes: dict[str, str] = Field(default_factory=dict)

    _v_id = field_validator("id")(_check_id)

    def profile(self) -> str:
        """The description followed by the attributes, in :data:`PROFILE_ORDER`.

        >>> Persona(id="p", description="a parent", attributes={"writes": "short", "age": "34"}).profile()
        'a parent (age: 34; writes: short)'
        >>> Persona(id="p", description="a parent").profile()
        'a parent'
        """
        keys = [k for k in PROFILE_ORDER if k in self.attributes]
        keys += sorted(k for k in self.attributes if k not in PROFILE_ORDER)
        if not keys:
            return self.description
        return f"{self.description} ({'; '.join(f'{k}: {self.attributes[k]}' for k in keys)})"


class Flaw(_Strict):
    """One catalogue entry: a specific, checkable mistake a flawed assistant turn makes.

    ``label`` is the short name (a seed's ``flaw``), ``claim`` the wrong statement as the assistant
    makes it, ``correct`` the true fact that contradicts it, ``kind`` its kind (``wrong_dose``,
    ``invented_citation``, ``wrong_threshold``, ...). ``personas`` lists the domain's personas the
    flaw fits; omitted means every persona of the domain.
    """

    id: str
    kind: str
    label: str = Field(min_length=3)
    claim: str = Field(min_length=10)
    correct: str = Field(min_length=10)
    personas: list[str] | None = None

    _v_id = field_validator("id", "kind")(_check_id)

    @field_validator("personas")
    @classmethod
    def _some_personas(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("personas: list at least one persona id, or omit the key for all personas")
        return value


class Domain(_Strict):
    id: str
    name: str = Field(min_length=1)
    description: str = Field(min_length=10)
    settings: list[str] = Field(min_length=1)
    stakes: str = Field(min_length=10)
    personas: list[Persona] = Field(min_length=1)
    flaws: list[Flaw] = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)

    _v_id = field_validator("id")(_check_id)

    @field_validator("flaws", mode="before")
    @classmethod
    def _catalogue_entries(cls, value: object) -> object:
        if isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, str):
                    raise ValueError(  # noqa: TRY004 - pydantic reports ValueError as a validation error
                        f"flaw {i} is a plain string ({item[:40]!r}); a flaw is a catalogue entry "
                        "{id, kind, label, claim, correct, personas?} (see docs/generation.md)"
                    )
        return value

    @model_validator(mode="after")
    def _unique_personas(self) -> Domain:
        ids = [p.id for p in self.personas]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"domain {self.id!r} has duplicate persona ids: {dupes}")
        flaw_ids = [f.id for f in self.flaws]
        dupes = sorted({i for i in flaw_ids if flaw_ids.count(i) > 1})
        if dupes:
            raise ValueError(f"domain {self.id!r} has duplicate flaw ids: {dupes}")
        known = set(ids)
        for f in self.flaws:
            unknown = sorted(set(f.personas or ()) - known)
            if unknown:
                raise ValueError(f"flaw {f.id!r} of domain {self.id!r} names unknown persona(s): {', '.join(unknown)}")
        return self

    def persona(self, persona_id: str) -> Persona:
        """The persona with id ``persona_id`` (``KeyError`` if the domain has none)."""
        for p in self.personas:
            if p.id == persona_id:
                return p
        raise KeyError(f"domain {self.id!r} has no persona {persona_id!r}")

    def flaw(self, flaw_id: str) -> Flaw:
        """The flaw catalogue entry with id ``flaw_id`` (``KeyError`` if the domain has none)."""
        for f in self.flaws:
            if f.id == flaw_id:
                return f
        raise KeyError(f"domain {self.id!r} has no flaw {flaw_id!r}")

    def flaws_for(self, persona_id: str) -> list[Flaw]:
        """The flaws compatible with a persona (those listing it, and those listing none)."""
        return [f for f in self.flaws if f.personas is None or persona_id in f.personas]


class Facet(_Strict):
    id: str
    name: str
    description: str

    _v_id = field_validator("id")(_check_id)


class Trait(_Strict):
    id: str
    name: str = Field(min_length=1)
    definition: str = Field(min_length=10)
    good_behaviour: list[str] = Field(min_length=1)
    failures: list[str] = Field(min_length=1)
    evaluated: bool = False
    facets: list[Facet] = Field(default_factory=list)
    flawed_turn_rate: float = Field(default=0.1, ge=0.0, le=1.0)
    aliases: list[str] = Field(default_factory=list)

    _v_id = field_validator("id")(_check_id)


class TurnRange(_Strict):
    min: int = Field(ge=2, le=4)
    max: int = Field(ge=2, le=4)

    @model_validator(mode="after")
    def _ordered(self) -> TurnRange:
        if self.min > self.max:
            raise ValueError(f"turns.min ({self.min}) is greater than turns.max ({self.max})")
        return self


class Pressure(_Strict):
    id: str
    name: str = Field(min_length=1)
    description: str = Field(min_length=10)
    escalation: list[str] = Field(min_length=1)
    adversarial: bool
    turns: TurnRange = TurnRange(min=2, max=4)
    traits: dict[str, float] = Field(default_factory=dict)
    domains: dict[str, float] = Field(default_factory=dict)
    shape: Literal["any", "flawed_prior_turn"] = "any"
    operator_persona: bool = False
    aliases: list[str] = Field(default_factory=list)

    _v_id = field_validator("id")(_check_id)

    @field_validator("traits", "domains")
    @classmethod
    def _positive_weights(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if v < 0}
        if bad:
            raise ValueError(f"weights must be >= 0, got {bad}")
        return value


class TaxonomyIndex(_Strict):
    """``taxonomy.yaml``: the name, version and the files holding the three lists."""

    name: str
    version: str
    domains_file: str = "domains.yaml"
    traits_file: str = "traits.yaml"
    pressures_file: str = "pressures.yaml"
    default_pairing_weight: float = Field(default=0.25, ge=0.0)


class Taxonomy(_Strict):
    """A validated taxonomy: every cross-reference resolves and no id or alias is ambiguous."""

    name: str
    version: str
    default_pairing_weight: float
    domains: list[Domain] = Field(min_length=1)
    traits: list[Trait] = Field(min_length=1)
    pressures: list[Pressure] = Field(min_length=1)

    @model_validator(mode="after")
    def _cross_references(self) -> Taxonomy:
        for kind, items in (("domain", self.domains), ("trait", self.traits), ("pressure", self.pressures)):
            ids = [i.id for i in items]
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"duplicate {kind} ids: {', '.join(dupes)}")
            seen: dict[str, str] = {i: i for i in ids}
            for item in items:
                for alias in item.aliases:
                    key = normalize_id(alias)
                    if key in seen and seen[key] != item.id:
                        raise ValueError(
                            f"{kind} alias {alias!r} of {item.id!r} clashes with {seen[key]!r}"
                        )
                    seen[key] = item.id
        trait_ids = {t.id for t in self.traits}
        domain_ids = {d.id for d in self.domains}
        for p in self.pressures:
            unknown = sorted(set(p.traits) - trait_ids)
            if unknown:
                raise ValueError(f"pressure {p.id!r} names unknown trait(s): {', '.join(unknown)}")
            unknown = sorted(set(p.domains) - domain_ids)
            if unknown:
                raise ValueError(f"pressure {p.id!r} names unknown domain(s): {', '.join(unknown)}")
        if self.default_pairing_weight == 0:
            for t in self.traits:
                if not any(p.traits.get(t.id, 0) > 0 for p in self.pressures):
                    raise ValueError(
                        f"trait {t.id!r} pairs with no pressure tactic "
                        "(default_pairing_weight is 0 and no pressure lists it)"
                    )
        return self

    # -- lookups ---------------------------------------------------------------------------

    def domain(self, domain_id: str) -> Domain:
        return {d.id: d for d in self.domains}[domain_id]

    def trait(self, trait_id: str) -> Trait:
        return {t.id: t for t in self.traits}[trait_id]

    def pressure(self, pressure_id: str) -> Pressure:
        return {p.id: p for p in self.pressures}[pressure_id]

    def pairing_weight(self, trait_id: str, pressure: Pressure) -> float:
        """The trait-pressure weight: the pressure's ``traits:`` entry, else ``default_pairing_weight``."""
        return pressure.traits.get(trait_id, self.default_pairing_weight)

    def domain_weight(self, domain_id: str, pressure: Pressure) -> float:
        """The domain-pressure weight, under the strict rule.

        A pressure whose ``domains:`` map is empty fits every domain (weight 1); one that lists
        domains fits only those: a domain it does not list, or lists with 0, is forbidden (0).
        """
        if not pressure.domains:
            return 1.0
        return pressure.domains.get(domain_id, 0.0)
