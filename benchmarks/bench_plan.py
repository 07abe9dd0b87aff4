"""Planning speed: how long ``plan()`` takes for 1,000,000 seeds over all 180 cells.

Prints the wall time, seeds per second, the balance check, and a side-by-side ratio against a
naive per-seed planner (Python loop, one RNG draw per field) on a 100,000-seed sample, so the
figure is relative to the same machine in the same run.

    .venv/bin/python benchmarks/bench_plan.py [--n 1000000] [--quick]
"""

from __future__ import annotations

import argparse
import random
import time

from scenario_forge.planning import plan
from scenario_forge.taxonomy.graph import build_graph, pressure_choices
from scenario_forge.taxonomy.loader import load_taxonomy


def naive_plan(taxonomy, n: int, seed: int) -> int:
    """One Python-level draw per field per seed (what a straightforward planner does)."""
    rng = random.Random(seed)
    graph = build_graph(taxonomy)
    cells = [(d, t) for d in taxonomy.domains for t in taxonomy.traits]
    choices = {t.id: pressure_choices(graph, t.id) for t in taxonomy.traits}
    out = 0
    for i in range(n):
        d, t = cells[i % len(cells)]
        c = choices[t.id]
        p = rng.choices(c.ids, weights=c.probs.tolist())[0]
        pr = taxonomy.pressure(p)
        rng.randint(pr.turns.min, pr.turns.max)
        rng.choice(d.personas)
        rng.random()
        out += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="10,000 seeds (smoke test)")
    args = ap.parse_args()
    n = 10_000 if args.quick else args.n
    taxonomy = load_taxonomy()

    start = time.perf_counter()
    seeds = plan(taxonomy, None, None, n, seed=0)
    wall = time.perf_counter() - start
    counts = seeds.cell_counts()
    spread = max(counts.values()) - min(counts.values())
    unique = len(set(seeds.ids()))
    t0 = time.perf_counter()
    shard = seeds[: min(n, 10_000)]
    per_record = (time.perf_counter() - t0) / len(shard)

    sample = min(n, 100_000)
    t0 = time.perf_counter()
    plan(taxonomy, None, None, sample, seed=0)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive_plan(taxonomy, sample, seed=0)
    naive = time.perf_counter() - t0

    print(f"plan({n:,} seeds, 12 domains x 15 traits): {wall:.2f} s ({n / wall:,.0f} seeds/s)")
    print(f"cell balance: max - min = {spread} (must be <= 1); distinct ids: {unique:,}")
    print(f"building ScenarioSeed records on access (per shard): {per_record * 1e6:.1f} us per seed")
    print(f"{sample:,}-seed sample: ours {ours:.2f} s vs naive per-seed loop {naive:.2f} s -> speed ratio {naive / ours:.1f}x")
    if spread > 1 or unique != n or len(counts) != 180:
        raise SystemExit("FAILED: plan not balanced or ids not unique")


if __name__ == "__main__":
    main()
