"""Mixture recipes: YAML files users copy, validated with pydantic, resolved against the taxonomy.

A recipe says which scenarios form the beneficial share and at what ratio, which are held out
(whole domains, whole traits, an in-distribution fraction), what reward the beneficial training
rows carry, and which persona pair renders the persistence probes. The built-in recipes in the
repo's ``recipes/`` folder reproduce the paper's arms; ``--recipe NAME`` picks one of them and
``--recipe FILE`` any other.

Lists of domains and traits take ids or aliases, plus selectors: ``@all``; for traits
``@evaluated`` / ``@training_only`` (the taxonomy's ``evaluated`` flag); in held-out lists
``@other`` (every domain, or trait, that the beneficial share does not use).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .._validation import one_line
from ..errors import ConfigError
from ..resources import resource_dir
from ..taxonomy.loader import resolve_domains, resolve_traits
from ..taxonomy.models import Taxonomy

#: Largest denominator when reading a ratio as a fraction p/q (see :func:`ratio_fraction`).
MAX_DENOMINATOR = 10_000
SELECTORS = {"@all", "@evaluated", "@training_only", "@other"}


class _Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BeneficialPool(_Recipe):
    """Which scenarios may enter the beneficial training share (empty lists: no restriction)."""

    domains: list[str] = Field(default_factory=list, description="domain ids/aliases; empty = all")
    exclude_domains: list[str] = Field(default_factory=list)
    traits: list[str] = Field(default_factory=list, description="trait ids/aliases/facets or @evaluated/@training_only; empty = all")
    exclude_traits: list[str] = Field(default_factory=list)


class HeldOut(_Recipe):
    """Held-out splits. A scenario in a held-out domain goes to ``heldout_domains``; else one of a
    held-out trait to ``heldout_traits``; ``fraction`` of the remaining eligible scenarios
    (stratified by domain) goes to ``heldout``."""

    domains: list[str] = Field(default_factory=list, description="ids/aliases or @other")
    traits: list[str] = Field(default_factory=list, description="ids/aliases/facets, @evaluated, @training_only or @other")
    fraction: float = Field(default=0.0, ge=0.0, lt=1.0, description="in-distribution held-out share of eligible scenarios")
    max_rows: int | None = Field(default=None, ge=1, description="cap per held-out split (seeded sample)")


class Persistence(_Recipe):
    """Persistence probes: the same held-out scenarios plain, under a harmful operator persona and
    under a helpful persona (the control), as splits ``persistence_plain|harmful|helpful``."""

    harmful: str = Field(description="persona name (recipes/personas/NAME.yaml) or YAML file")
    helpful: str = Field(description="persona name or YAML file")
    from_splits: list[str] = Field(default_factory=list, description="held-out splits to draw from; empty = all")
    max_rows: int | None = Field(default=200, ge=1)


class Recipe(_Recipe):
    """One mixture arm. See ``docs/mixing.md`` for how totals are chosen."""

    name: str = Field(min_length=1)
    description: str = ""
    beneficial_ratio: float = Field(gt=0.0, lt=1.0, description="beneficial rows / total rows, exactly (as a fraction p/q)")
    standard_only: bool = Field(
        default=False,
        description="the compute-matched control: the total this recipe would have, all of it standard rows",
    )
    total_rows: int | None = Field(default=None, ge=1, description="total train rows; default: as many as the beneficial rows allow")
    reward_type: Literal["rubric", "generic_judge"] = Field(
        default="rubric", description="reward of the beneficial training rows (held-out rows are always rubric-graded)"
    )
    beneficial: BeneficialPool = BeneficialPool()
    heldout: HeldOut = HeldOut()
    persistence: Persistence | None = None
    seed: int = Field(default=0, ge=0)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if "/" in value or value.startswith("."):
            raise ValueError(f"recipe name {value!r} must not contain '/' or start with '.'")
        return value

    def ratio_fraction(self) -> Fraction:
        return ratio_fraction(self.beneficial_ratio)


def ratio_fraction(ratio: float) -> Fraction:
    """The ratio as the closest fraction ``p/q`` with ``q <= 10,000`` (``0.05`` -> ``1/20``).

    >>> ratio_fraction(0.05), ratio_fraction(1 / 3), ratio_fraction(0.0002)
    (Fraction(1, 20), Fraction(1, 3), Fraction(1, 5000))
    """
    return Fraction(ratio).limit_denominator(MAX_DENOMINATOR)


# -- loading ---------------------------------------------------------------------------------------


def builtin_recipes() -> dict[str, Path]:
    """``{name: file}`` of the recipes shipped in ``recipes/``."""
    folder = resource_dir("recipes")
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def recipe_path(ref: str) -> Path:
    """A recipe file from ``--recipe NAME|FILE``."""
    path = Path(ref).expanduser()
    if path.is_file():
        return path
    builtins = builtin_recipes()
    if ref in builtins:
        return builtins[ref]
    if path.suffix in (".yaml", ".yml") or "/" in ref:
        raise ConfigError(f"recipe file not found: {ref}")
    raise ConfigError(f"unknown recipe {ref!r}: not a file and not a built-in recipe ({', '.join(builtins)})")


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: malformed YAML ({getattr(exc, 'problem', None) or 'not valid YAML'})") from None
    if data is None:
        raise ConfigError(f"{what} {path} is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path}: expected a mapping of fields, got {type(data).__name__}")
    return data


def load_recipe(ref: str) -> tuple[Recipe, Path]:
    """The validated recipe for ``--recipe NAME|FILE`` and the file it came from."""
    path = recipe_path(ref)
    data = read_yaml_mapping(path, "recipe")
    try:
        return Recipe.model_validate(data), path
    except ValidationError as exc:
        raise ConfigError(one_line(exc, str(path))) from None


# -- resolving names against the taxonomy ------------------------------------------------------------


class TraitMatch(_Recipe):
    trait: str
    facet: str | None = None

    def matches(self, trait: str, facet: str | None) -> bool:
        return trait == self.trait and (self.facet is None or facet == self.facet)


class ResolvedRecipe(_Recipe):
    """A recipe with every name turned into taxonomy ids (``@`` selectors expanded)."""

    recipe: Recipe
    beneficial_domains: list[str]
    beneficial_traits: list[TraitMatch]
    heldout_domains: list[str]
    heldout_traits: list[TraitMatch]

    def eligible(self, domain: str, trait: str, facet: str | None) -> bool:
        return domain in self.beneficial_domains and any(m.matches(trait, facet) for m in self.beneficial_traits)

    def heldout_trait(self, trait: str, facet: str | None) -> bool:
        return any(m.matches(trait, facet) for m in self.heldout_traits)


def _domains(taxonomy: Taxonomy, names: list[str], where: str, other: list[str] | None = None) -> list[str]:
    out: list[str] = []
    for name in names:
        if name == "@all":
            ids = [d.id for d in taxonomy.domains]
        elif name == "@other" and other is not None:
            ids = other
        elif name.startswith("@"):
            raise ConfigError(f"{where}: unknown domain selector {name!r} (use @all{' or @other' if other is not None else ''})")
        else:
            try:
                ids = resolve_domains(taxonomy, [name])
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
        out += [i for i in ids if i not in out]
    return out


def _traits(taxonomy: Taxonomy, names: list[str], where: str, other: list[str] | None = None) -> list[TraitMatch]:
    out: list[TraitMatch] = []
    for name in names:
        pairs: list[tuple[str, str | None]]
        if name == "@all":
            pairs = [(t.id, None) for t in taxonomy.traits]
        elif name == "@evaluated":
            pairs = [(t.id, None) for t in taxonomy.traits if t.evaluated]
        elif name == "@training_only":
            pairs = [(t.id, None) for t in taxonomy.traits if not t.evaluated]
        elif name == "@other" and other is not None:
            pairs = [(t, None) for t in other]
        elif name.startswith("@"):
            raise ConfigError(f"{where}: unknown trait selector {name!r} (use @all, @evaluated, @training_only{' or @other' if other is not None else ''})")
        else:
            try:
                pairs = resolve_traits(taxonomy, [name])
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
        for trait, facet in pairs:
            match = TraitMatch(trait=trait, facet=facet)
            if match not in out:
                out.append(match)
    return out


def resolve_recipe(
    recipe: Recipe,
    taxonomy: Taxonomy,
    heldout_domains: list[str] | None = None,
    heldout_traits: list[str] | None = None,
) -> ResolvedRecipe:
    """Check every domain and trait the recipe names against ``taxonomy`` (one-line errors) and
    expand selectors. ``heldout_*`` override the recipe's held-out lists (``--heldout-domain``)."""
    where = f"recipe {recipe.name}"
    sel = recipe.beneficial
    domains = _domains(taxonomy, sel.domains or ["@all"], f"{where}: beneficial.domains")
    excluded = _domains(taxonomy, sel.exclude_domains, f"{where}: beneficial.exclude_domains")
    domains = [d for d in domains if d not in excluded]
    traits = _traits(taxonomy, sel.traits or ["@all"], f"{where}: beneficial.traits")
    excluded_traits = _traits(taxonomy, sel.exclude_traits, f"{where}: beneficial.exclude_traits")
    if any(x.facet for x in excluded_traits):
        raise ConfigError(f"{where}: beneficial.exclude_traits takes whole traits, not facets")
    traits = [t for t in traits if t.trait not in {x.trait for x in excluded_traits}]
    if not domains or not traits:
        raise ConfigError(f"{where}: the beneficial selection is empty (every domain or every trait is excluded)")
    other_domains = [d.id for d in taxonomy.domains if d.id not in domains]
    used_traits = {t.trait for t in traits}
    other_traits = [t.id for t in taxonomy.traits if t.id not in used_traits]
    held_d = _domains(
        taxonomy, recipe.heldout.domains if heldout_domains is None else heldout_domains,
        f"{where}: heldout.domains", other=other_domains,
    )
    held_t = _traits(
        taxonomy, recipe.heldout.traits if heldout_traits is None else heldout_traits,
        f"{where}: heldout.traits", other=other_traits,
    )
    return ResolvedRecipe(
        recipe=recipe,
        beneficial_domains=domains,
        beneficial_traits=traits,
        heldout_domains=held_d,
        heldout_traits=held_t,
    )
