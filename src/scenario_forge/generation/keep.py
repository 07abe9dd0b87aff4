"""``generate --keep N``: replacement rounds until N scenarios pass curation or the attempt budget is spent.

Round 0 is the ordinary plan of N seeds. After each round the whole run so far is curated; if fewer
than N scenarios are kept and attempts remain, the next round plans replacements for the shortfall
in the cells (domain, trait selection) that fell short of their round-0 count, so coverage stays as
balanced as the first plan made it. The run's shards, manifest and accounting cover every attempt.

Which cells get replacements and the replacement seeds themselves are deterministic:

- each cell's deficit is its round-0 count minus its kept count; a round plans
  ``min(shortfall, attempts left)`` replacements, one at a time to the cell with the largest
  remaining deficit, ties broken by a permutation of the cells seeded by ``(plan seed, round)``;
- a cell's replacements are planned by :func:`~scenario_forge.planning.plan_ids` over that one cell
  with the plan seed ``content_key(plan seed, "keep", round, domain, trait, facet)``, so their pressure,
  persona, flaw and shape follow the same graph weights as round 0.

A resumed run replays the same rounds: finished shards are read back, and the same kept set (the
judge's replies are cached) gives the same replacements.
"""

from __future__ import annotations

import heapq
from collections import Counter
from typing import Any

import numpy as np

from ..config import GenerateConfig
from ..hashing import content_key
from ..planning import plan_ids
from ..records import ScenarioSeed

Cell = tuple[str, str, str | None]  # (domain, trait, facet selection or None for the whole trait)


def seed_cell(config: GenerateConfig, seed: ScenarioSeed) -> Cell:
    """The plan cell a seed was drawn in: its domain and the trait selection (a facet alias pins
    a facet; otherwise the whole trait, facets in rotation)."""
    facet = seed.facet if (seed.trait, seed.facet) in config.selection.traits else None
    return (seed.domain, seed.trait, facet)


def allocate(deficits: dict[Cell, int], budget: int, seed: int, round_no: int) -> dict[Cell, int]:
    """Spread ``budget`` replacements over cells, one at a time to the largest remaining deficit
    (ties: a seeded permutation of the cells); never more than a cell's deficit.

    >>> allocate({("a", "t", None): 3, ("b", "t", None): 1}, 2, 0, 1)
    {('a', 't', None): 2}
    >>> sum(allocate({("a", "t", None): 1, ("b", "t", None): 1, ("c", "t", None): 1}, 2, 0, 1).values())
    2
    """
    cells = sorted(c for c, d in deficits.items() if d > 0)
    order = np.random.default_rng([seed, round_no]).permutation(len(cells)).tolist()
    heap = [(-deficits[cells[i]], rank, i) for rank, i in enumerate(order)]
    heapq.heapify(heap)
    out: Counter[Cell] = Counter()
    while budget > 0 and heap:
        neg, rank, i = heapq.heappop(heap)
        out[cells[i]] += 1
        budget -= 1
        if neg + 1 < 0:
            heapq.heappush(heap, (neg + 1, rank, i))
    return dict(out)


def replacement_seeds(
    config: GenerateConfig,
    attempted: list[ScenarioSeed],
    kept_ids: set[str],
    round_no: int,
) -> list[ScenarioSeed]:
    """The next round's seeds: ``min(keep - kept, attempts left)`` replacements in the cells that
    fell short of their round-0 count, indexed after every seed attempted so far."""
    keep, budget = config.keep, config.attempt_budget
    if keep is None or budget is None:
        raise ValueError("replacement seeds need --keep")
    first = [s for s in attempted if s.index < keep]  # round 0: the first plan's N seeds
    target = Counter(seed_cell(config, s) for s in first)
    kept = Counter(seed_cell(config, s) for s in attempted if s.id in kept_ids)
    deficits = {c: target[c] - kept[c] for c in target}
    count = min(keep - len(kept_ids), budget - len(attempted))
    taken = {s.id for s in attempted}
    out: list[ScenarioSeed] = []
    for (domain, trait, facet), k in sorted(allocate(deficits, count, config.seed, round_no).items()):
        cell_seed = int(content_key(config.seed, "keep", round_no, domain, trait, facet, length=8), 16) & 0x7FFFFFFF
        for s in plan_ids(config.selection.taxonomy, [domain], [(trait, facet)], k, cell_seed):
            if s.id in taken:
                raise AssertionError(f"replacement seed id {s.id} repeats an earlier one")  # 64-bit hash: a bug
            taken.add(s.id)
            out.append(s.model_copy(update={"index": len(attempted) + len(out)}))
    return out


def round_row(round_no: int, seeds: list[ScenarioSeed], kept_ids: set[str], attempted: int) -> dict[str, Any]:
    """One round's accounting: its planned seeds, how many of them were kept and rejected, and the
    run's totals after it (attempted, kept)."""
    kept_here = sum(1 for s in seeds if s.id in kept_ids)
    return {
        "round": round_no,
        "planned": len(seeds),
        "kept": kept_here,
        "rejected": len(seeds) - kept_here,
        "attempted_total": attempted,
        "kept_total": len(kept_ids),
    }
