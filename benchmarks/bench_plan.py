"""Planning speed: how long ``plan()`` takes for 1,000,000 seeds over all 180 cells.

Prints the wall time, seeds per second, the balance check, and a side-by-side ratio against a
naive per-seed planner (Python loop, one RNG draw per field) on a 100,000-seed sample, so the
figure is relative to the same machine in the same run.

    .venv/bin/python benchmarks/bench_plan.py [--n 1000000] [--quick]

Targets (the script exits 1 when one is missed): the full run plans 1,000,000 seeds in <= 5 s
(README: "seconds"; measured 0.56 s) and is >= 10x the naive planner on its 100,000-seed sample
(measured 21.7x). Quick-size target (``--quick``, 10,000 seeds; ``tests/test_benchmarks_quick.py``
runs it): the plan in <= 0.5 s and >= 3x the naive planner on the same 10,000 seeds (fixed costs
weigh more at this size: 6-12x measured with the 2 cores loaded). Always: cells balanced to +-1,
ids unique, all 180 cells present.
"""

from __future__ import annotations

import argparse
import random
import sys
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
    limit_s = 0.5 if args.quick else 5.0 * n / 1_000_000
    min_ratio = 3.0 if args.quick else 10.0
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
    ratio = naive / ours
    ok_time, ok_ratio = wall <= limit_s, ratio >= min_ratio
    print(f"target: plan {n:,} seeds in <= {limit_s:.2f} s: {wall:.2f} s -> {'PASS' if ok_time else 'FAIL'}")
    print(f"target: >= {min_ratio:.0f}x the naive planner ({sample:,} seeds): {ratio:.1f}x -> {'PASS' if ok_ratio else 'FAIL'}")
    if not (ok_time and ok_ratio):
        sys.exit(1)


if __name__ == "__main__":
    main()
