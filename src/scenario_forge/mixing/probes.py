"""Which held-out scenarios the persistence probes use, and what happens when there are none.

The probes are held-out scenarios shown plain, under a harmful operator persona and under a
helpful one (:func:`~scenario_forge.mixing.rows.probe_rows`). They come from the recipe's
``persistence.from_splits`` held-out splits, limited to the domains both personas name.
"""

from __future__ import annotations

import sys

import numpy as np

from ..errors import ConfigError
from ..records import Scenario
from .personas import Persona
from .recipes import Persistence, Recipe

#: The held-out splits, in the order a scenario is assigned to them.
HELDOUT_ORDER = ("heldout", "heldout_domains", "heldout_traits")
#: The three probe splits a recipe with ``persistence`` writes (none when no scenario qualifies).
PERSISTENCE_SPLITS = ("persistence_plain", "persistence_harmful", "persistence_helpful")


def seeded_rng(seed: int, purpose: int) -> np.random.Generator:
    """The mix's random generator for one purpose (1 held-out draw, 2 caps, 3 probes, 4 selection):
    each draw depends only on the recipe's seed and its purpose."""
    return np.random.default_rng([seed, purpose])


def probe_domains(personas: dict[str, Persona]) -> set[str] | None:
    """The domains a persistence probe may come from: the intersection of both personas' domains
    (None: any domain)."""
    domains = [set(p.domains) for p in personas.values() if p.domains]
    return set.intersection(*domains) if domains else None


def warn(line: str) -> None:
    """One warning line on stderr (the mix goes on)."""
    print(f"warning: {line}", file=sys.stderr)


def _spec(recipe: Recipe) -> Persistence:
    if recipe.persistence is None:
        raise ValueError(f"recipe {recipe.name} has no persistence section")
    return recipe.persistence


def probe_pool(recipe: Recipe, personas: dict[str, Persona], held: dict[str, list[Scenario]]) -> tuple[list[Scenario], int]:
    """The held-out scenarios the probes may use (sorted by id, uncapped) and how many held-out
    scenarios they were chosen from."""
    sources = _spec(recipe).from_splits or list(held)
    unknown = [n for n in sources if n not in HELDOUT_ORDER]
    if unknown:
        raise ConfigError(f"recipe {recipe.name}: persistence.from_splits names unknown split(s) {unknown}; use {', '.join(HELDOUT_ORDER)}")
    pool = sorted({s.id: s for n in sources for s in held.get(n, [])}.values(), key=lambda s: s.id)
    allowed = probe_domains(personas)
    return [s for s in pool if allowed is None or s.domain in allowed], len(pool)


def probe_scenarios(recipe: Recipe, personas: dict[str, Persona], held: dict[str, list[Scenario]]) -> list[Scenario]:
    """The held-out scenarios the persistence probes use (seeded sample of at most ``max_rows``)."""
    matching, _ = probe_pool(recipe, personas, held)
    spec = _spec(recipe)
    if spec.max_rows is not None and len(matching) > spec.max_rows:
        keep = {int(i) for i in seeded_rng(recipe.seed, 3).permutation(len(matching))[: spec.max_rows]}
        matching = [s for i, s in enumerate(matching) if i in keep]
    return matching


def without_probes(recipe: Recipe, personas: dict[str, Persona], pool: int, strict: bool, guard: bool = False) -> None:
    """No scenario for the persistence probes: one warning line and the mix goes on without them, or
    ``--strict`` refuses (nothing is written)."""
    message = no_probes_reason(recipe.name, pool, probe_domains(personas), guard)
    if strict:
        raise ConfigError(f"--strict: {message}; nothing was written")
    warn(f"{message}: mixing without persistence probes (--strict refuses instead)")


def no_probes_reason(name: str, pool: int, allowed: set[str] | None, guard: bool = False) -> str:
    """Why a recipe that asks for persistence probes gets none, in one clause.

    >>> no_probes_reason("paper-5pct", 3, {"health"})
    "recipe paper-5pct asks for persistence probes but none of the 3 held-out scenarios is in the personas' domains (health)"
    """
    where = f" in the personas' domains ({', '.join(sorted(allowed))})" if allowed is not None else ""
    after = " left after the contamination guard" if guard else ""
    return f"recipe {name} asks for persistence probes but none of the {pool} held-out scenarios{after} is{where}"
