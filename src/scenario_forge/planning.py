"""The coverage plan: which scenarios to generate.

``plan(taxonomy, domains, traits, n, seed)`` spreads ``n`` scenarios over the selected
domain x trait cells so that cell counts differ by at most one, then draws each scenario's pressure
tactic in its cell with probability proportional to the product of the taxonomy graph's
domain-pressure and trait-pressure edge weights (so a pressure never leaves its compatible
domains), a turn count from the pressure's range, its shape (plain, or a pre-filled flawed
assistant turn) from the trait and the pressure, and a persona from its domain; a flawed-turn
scenario also gets an entry of the domain's flaw catalogue and a persona compatible with it.
Everything is drawn from one seeded generator with whole-array draws, so a plan is deterministic for
a seed and a million seeds take seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import numpy as np

from .errors import ConfigError
from .records import ScenarioSeed
from .taxonomy.graph import build_graph, cell_pressure_choices
from .taxonomy.loader import TaxonomySelection, resolve_domains, resolve_traits
from .taxonomy.models import Taxonomy


def plan(
    taxonomy: Taxonomy,
    domains: Sequence[str] | None,
    traits: Sequence[str] | None,
    n: int,
    seed: int,
) -> Plan:
    """Plan ``n`` scenario seeds over the selected domains and traits (names or aliases; empty = all)."""
    return plan_ids(taxonomy, resolve_domains(taxonomy, list(domains or [])), resolve_traits(taxonomy, list(traits or [])), n, seed)


def plan_selection(selection: TaxonomySelection, n: int, seed: int) -> Plan:
    """Plan ``n`` seeds over a selection already resolved (a validated config's ``selection``)."""
    return plan_ids(selection.taxonomy, selection.domains, selection.traits, n, seed)


def plan_ids(
    taxonomy: Taxonomy,
    domain_ids: list[str],
    trait_sel: list[tuple[str, str | None]],
    n: int,
    seed: int,
) -> Plan:
    """Plan ``n`` seeds over domain ids and ``(trait id, facet id | None)`` selections."""
    if n <= 0:
        raise ConfigError(f"--n must be a positive number of scenarios, got {n}")
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {seed}")
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
    facet_idx = np.full(n, -1, dtype=np.int64)  # -1: the trait as a whole
    flawed = np.zeros(n, dtype=bool)

    # 2. Per cell: the pressure, with probability proportional to the product of the cell's
    #    domain-pressure and trait-pressure edge weights, read through the graph. One uniform
    #    draw per seed, inverted against its cell's cumulative distribution (vectorised).
    cum = np.zeros((n_cells, len(pressure_ids)), dtype=np.float64)
    last = np.zeros(n_cells, dtype=np.int64)  # each cell's last pressure with a non-zero weight
    for c in np.flatnonzero(counts):
        d_id, t_id = domain_ids[c // len(trait_sel)], trait_sel[c % len(trait_sel)][0]
        try:
            choice = cell_pressure_choices(graph, d_id, t_id)
        except ValueError as exc:
            raise ConfigError(f"taxonomy {taxonomy.name}: {exc} (see `scenario-forge taxonomy validate`)") from None
        cols = np.array([pressure_pos[p] for p in choice.ids], dtype=np.int64)
        probs = np.zeros(len(pressure_ids), dtype=np.float64)
        probs[cols] = choice.probs
        cum[c] = np.cumsum(probs)
        last[c] = cols.max()
    # The index of a draw u is the number of its cell's cumulative bounds <= u: one gather and one
    # comparison per pressure column (the small table stays in cache; no sort of a million rows).
    u = rng.random(n)
    pos = np.zeros(n, dtype=np.int64)
    for j in range(len(pressure_ids) - 1):
        pos += u >= cum[:, j][cell]
    pressure_idx = np.minimum(pos, last[cell])

    #    Per selected trait: facets in rotation, and the flawed-turn shape at the trait's rate
    #    (always, for a pressure that builds on a mistake: step 3).
    for s, (trait_id, facet_id) in enumerate(trait_sel):
        rows = np.flatnonzero(sel_idx == s)
        if rows.size == 0:
            continue
        trait = taxonomy.trait(trait_id)
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

    # 4. Per domain: a persona for every seed, uniformly; a flaw from the domain's catalogue,
    #    uniformly, and for a flawed seed the persona redrawn among the flaw's compatible personas.
    persona_idx = np.empty(n, dtype=np.int64)
    flaw_idx = np.empty(n, dtype=np.int64)
    for i, d_id in enumerate(domain_ids):
        rows = np.flatnonzero(dom_idx == i)
        if rows.size == 0:
            continue
        d = taxonomy.domain(d_id)
        persona_idx[rows] = rng.integers(0, len(d.personas), size=rows.size)
        flaw_idx[rows] = rng.integers(0, len(d.flaws), size=rows.size)
        # table[f, :k[f]] holds the personas flaw f fits; a flawed row draws one of them.
        persona_pos = {p.id: k for k, p in enumerate(d.personas)}
        fits = [[persona_pos[p] for p in f.personas] if f.personas is not None else list(range(len(d.personas))) for f in d.flaws]
        k = np.array([len(x) for x in fits], dtype=np.int64)
        table = np.zeros((len(fits), int(k.max())), dtype=np.int64)
        for f, x in enumerate(fits):
            table[f, : len(x)] = x
        sub = rows[flawed[rows]]
        f_sub = flaw_idx[sub]
        persona_idx[sub] = table[f_sub, (rng.random(sub.size) * k[f_sub]).astype(np.int64)]

    sample_seeds = rng.integers(0, 2**31 - 1, size=n, dtype=np.int64)
    columns = {
        "domain": dom_idx, "selection": sel_idx, "pressure": pressure_idx, "facet": facet_idx,
        "flawed": flawed, "turns": turns, "persona": persona_idx, "flaw": flaw_idx, "sample_seed": sample_seeds,
    }
    return Plan(taxonomy, seed, domain_ids, trait_sel, columns)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    out: np.ndarray = x ^ (x >> np.uint64(31))
    return out


class Plan(Sequence[ScenarioSeed]):
    """The coverage plan, held as columns; :class:`ScenarioSeed` records are built on access.

    A million seeds are a few arrays, so planning stays fast; a shard materializes only its own
    slice. Ids hash the plan seed, the position and every drawn choice (64-bit, vectorized).
    """

    def __init__(
        self,
        taxonomy: Taxonomy,
        seed: int,
        domain_ids: list[str],
        trait_sel: list[tuple[str, str | None]],
        columns: dict[str, np.ndarray],
    ) -> None:
        self.seed = seed
        self.columns = columns
        self._domains = domain_ids
        self._traits = [t for t, _ in trait_sel]
        self._pressures = [p.id for p in taxonomy.pressures]
        self._operator = [p.operator_persona for p in taxonomy.pressures]
        self._personas = [[p.id for p in taxonomy.domain(d).personas] for d in domain_ids]
        self._flaws = [taxonomy.domain(d).flaws for d in domain_ids]
        self._facets = [[f.id for f in taxonomy.trait(t).facets] for t in self._traits]
        with np.errstate(over="ignore"):
            h = np.full(len(self), np.uint64(seed), dtype=np.uint64)
            h = _splitmix64(h ^ np.arange(len(self), dtype=np.uint64))
            for name in ("domain", "selection", "pressure", "facet", "flawed", "turns", "persona", "flaw", "sample_seed"):
                h = _splitmix64(h ^ (columns[name].astype(np.int64) + 1).astype(np.uint64))
        self.id_hashes = h

    def __len__(self) -> int:
        return len(self.columns["domain"])

    def cell_counts(self) -> dict[tuple[str, str], int]:
        """Scenarios per (domain, trait) cell, without building records."""
        keys, counts = np.unique(
            np.stack([self.columns["domain"], self.columns["selection"]], axis=1), axis=0, return_counts=True
        )
        return {(self._domains[d], self._traits[t]): int(c) for (d, t), c in zip(keys.tolist(), counts.tolist())}

    def ids(self, start: int = 0, stop: int | None = None) -> list[str]:
        return [f"sc-{h:016x}" for h in self.id_hashes[start:stop].tolist()]

    @overload
    def __getitem__(self, i: int) -> ScenarioSeed: ...
    @overload
    def __getitem__(self, i: slice) -> list[ScenarioSeed]: ...

    def __getitem__(self, i: int | slice) -> ScenarioSeed | list[ScenarioSeed]:
        if isinstance(i, slice):
            return [self._seed(k) for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._seed(i)

    def _seed(self, i: int) -> ScenarioSeed:
        c = self.columns
        di, si, pi, fi = int(c["domain"][i]), int(c["selection"][i]), int(c["pressure"][i]), int(c["facet"][i])
        flawed = bool(c["flawed"][i])
        flaw = self._flaws[di][int(c["flaw"][i])] if flawed else None
        return ScenarioSeed.model_construct(  # values are valid by construction; skip re-validation
            id=f"sc-{int(self.id_hashes[i]):016x}",
            index=i,
            domain=self._domains[di],
            trait=self._traits[si],
            facet=self._facets[si][fi] if fi >= 0 else None,
            pressure=self._pressures[pi],
            persona=self._personas[di][int(c["persona"][i])],
            user_turns=int(c["turns"][i]),
            shape="flawed_prior_turn" if flawed else "plain",
            flaw=flaw.label if flaw is not None else None,
            flaw_claim=flaw.claim if flaw is not None else None,
            flaw_correct=flaw.correct if flaw is not None else None,
            flaw_kind=flaw.kind if flaw is not None else None,
            operator_persona=self._operator[pi],
            sample_seed=int(c["sample_seed"][i]),
        )
