"""The coverage plan: which scenarios to generate.

``plan(taxonomy, domains, traits, n, seed)`` spreads ``n`` scenarios over the selected
domain x trait cells so that cell counts differ by at most one, then draws each scenario's pressure
tactic from the taxonomy graph's weights, a persona from its domain, a turn count from the pressure's
range, and its shape (plain, or a pre-filled flawed assistant turn) from the trait and the pressure.
Everything is drawn from one seeded generator with whole-array draws, so a plan is deterministic for
a seed and a million seeds take seconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from .errors import ConfigError
from .records import ScenarioSeed
from .taxonomy.graph import build_graph, pressure_choices
from .taxonomy.loader import resolve_domains, resolve_traits
from .taxonomy.models import Taxonomy


def plan(
    taxonomy: Taxonomy,
    domains: Sequence[str] | None,
    traits: Sequence[str] | None,
    n: int,
    seed: int,
) -> list[ScenarioSeed]:
    """Plan ``n`` scenario seeds over the selected domains and traits (names or aliases; empty = all)."""
    if n <= 0:
        raise ConfigError(f"--n must be a positive number of scenarios, got {n}")
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {seed}")
    domain_ids = resolve_domains(taxonomy, list(domains or []))
    trait_sel = resolve_traits(taxonomy, list(traits or []))
    graph = build_graph(taxonomy)
    rng = np.random.default_rng(seed)

    # 1. Balanced cells: every cell gets n // C, a seeded random choice of n % C cells one more,
    #    and the order is shuffled so any prefix (a shard) mixes cells.
    n_cells = len(domain_ids) * len(trait_sel)
    counts = np.full(n_cells, n // n_cells, dtype=np.int64)
    counts[rng.permutation(n_cells)[: n % n_cells]] += 1
    cell = rng.permutation(np.repeat(np.arange(n_cells, dtype=np.int64), counts))
    dom_idx = cell // len(trait_sel)
    sel_idx = cell % len(trait_sel)

    pressure_ids = [p.id for p in taxonomy.pressures]
    pressure_pos = {pid: i for i, pid in enumerate(pressure_ids)}
    pressure_idx = np.empty(n, dtype=np.int64)
    facet_idx = np.full(n, -1, dtype=np.int64)  # -1: the trait as a whole
    flawed = np.zeros(n, dtype=bool)

    # 2. Per selected trait: pressures from the graph's weights, facets in rotation, and the
    #    flawed-turn shape at the trait's rate (always, for a pressure that builds on a mistake).
    for s, (trait_id, facet_id) in enumerate(trait_sel):
        rows = np.flatnonzero(sel_idx == s)
        if rows.size == 0:
            continue
        trait = taxonomy.trait(trait_id)
        choice = pressure_choices(graph, trait_id)
        picked = rng.choice(len(choice.ids), size=rows.size, p=choice.probs)
        to_global = np.array([pressure_pos[p] for p in choice.ids], dtype=np.int64)
        pressure_idx[rows] = to_global[picked]
        if facet_id is not None:
            facet_idx[rows] = [f.id for f in trait.facets].index(facet_id)
        elif trait.facets:
            # Rotate over "whole trait" (-1) and each facet.
            facet_idx[rows] = (np.arange(rows.size) % (len(trait.facets) + 1)) - 1
        flawed[rows] = rng.random(rows.size) < trait.flawed_turn_rate

    # 3. Per pressure: turn counts from its range; forced shapes.
    turns = np.empty(n, dtype=np.int64)
    for i, p in enumerate(taxonomy.pressures):
        rows = np.flatnonzero(pressure_idx == i)
        if rows.size == 0:
            continue
        turns[rows] = rng.integers(p.turns.min, p.turns.max + 1, size=rows.size)
        if p.shape == "flawed_prior_turn":
            flawed[rows] = True

    # 4. Per domain: personas and planted flaws.
    persona_idx = np.empty(n, dtype=np.int64)
    flaw_idx = np.empty(n, dtype=np.int64)
    for i, d_id in enumerate(domain_ids):
        rows = np.flatnonzero(dom_idx == i)
        if rows.size == 0:
            continue
        d = taxonomy.domain(d_id)
        persona_idx[rows] = rng.integers(0, len(d.personas), size=rows.size)
        flaw_idx[rows] = rng.integers(0, len(d.flaws), size=rows.size)

    sample_seeds = rng.integers(0, 2**31 - 1, size=n, dtype=np.int64)
    return _materialize(
        taxonomy, seed, domain_ids, trait_sel, pressure_ids,
        dom_idx, sel_idx, pressure_idx, facet_idx, flawed, turns, persona_idx, flaw_idx, sample_seeds,
    )


def _materialize(
    taxonomy: Taxonomy,
    seed: int,
    domain_ids: list[str],
    trait_sel: list[tuple[str, str | None]],
    pressure_ids: list[str],
    dom_idx: np.ndarray,
    sel_idx: np.ndarray,
    pressure_idx: np.ndarray,
    facet_idx: np.ndarray,
    flawed: np.ndarray,
    turns: np.ndarray,
    persona_idx: np.ndarray,
    flaw_idx: np.ndarray,
    sample_seeds: np.ndarray,
) -> list[ScenarioSeed]:
    domains = [taxonomy.domain(d) for d in domain_ids]
    personas = [[p.id for p in d.personas] for d in domains]
    flaws = [d.flaws for d in domains]
    facets = {t: [f.id for f in taxonomy.trait(t).facets] for t, _ in trait_sel}
    operator = [taxonomy.pressure(p).operator_persona for p in pressure_ids]
    out: list[ScenarioSeed] = []
    construct = ScenarioSeed.model_construct  # values are valid by construction; skip re-validation
    for i, (di, si, pi, fi, fl, tu, pe, fw, ss) in enumerate(
        zip(
            dom_idx.tolist(), sel_idx.tolist(), pressure_idx.tolist(), facet_idx.tolist(),
            flawed.tolist(), turns.tolist(), persona_idx.tolist(), flaw_idx.tolist(),
            sample_seeds.tolist(),
        )
    ):
        trait_id = trait_sel[si][0]
        facet = facets[trait_id][fi] if fi >= 0 else None
        domain_id = domain_ids[di]
        pressure = pressure_ids[pi]
        persona = personas[di][pe]
        flaw = flaws[di][fw] if fl else None
        key = f"{seed}|{i}|{domain_id}|{trait_id}|{facet}|{pressure}|{persona}|{tu}|{flaw}|{ss}"
        out.append(
            construct(
                id="sc-" + hashlib.blake2b(key.encode(), digest_size=8).hexdigest(),
                index=i,
                domain=domain_id,
                trait=trait_id,
                facet=facet,
                pressure=pressure,
                persona=persona,
                user_turns=tu,
                shape="flawed_prior_turn" if fl else "plain",
                flaw=flaw,
                operator_persona=operator[pi],
                sample_seed=ss,
            )
        )
    return out
