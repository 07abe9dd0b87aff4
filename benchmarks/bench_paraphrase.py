"""Does the curation dedup threshold catch paraphrased scenarios and spare distinct ones?

The labelled set ``labelled/paraphrases.jsonl`` holds hand-written pairs of scenario texts in the
shape curation embeds (:func:`scenario_forge.curation.embed.scenario_text`: situation, user goal,
trap, user turns): ``paraphrase: true`` for the same scenario (persona, situation, flaw, pressure)
reworded substantially, ``false`` for a different scenario in the same domain and trait. Every text
is embedded with the curation embedder (all-MiniLM-L6-v2) and searched with the curation code
(:func:`scenario_forge.curation.dedup.near_duplicate_pairs`) at each threshold:

- recall: labelled paraphrase pairs found / labelled paraphrase pairs;
- precision: labelled paraphrase pairs found / all pairs found, where *all pairs* counts every pair
  of the set's texts that the search returns (a labelled distinct pair, or two texts from different
  rows: all of those are different scenarios);
- the cosine of each labelled pair, per label (min / median / max).

    .venv/bin/python benchmarks/bench_paraphrase.py               # sweep 0.70 .. 0.95
    .venv/bin/python benchmarks/bench_paraphrase.py --thresholds 0.9 --show-pairs

No quick mode: the set is small (128 texts, ~10 s with the model load); ``tests/test_paraphrase_dedup.py``
runs the measurement at the curation default and asserts its figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

LABELLED = ROOT / "labelled" / "paraphrases.jsonl"
SWEEP = (0.70, 0.75, 0.80, 0.825, 0.85, 0.875, 0.90, 0.925, 0.95)


def load_pairs(path: Path = LABELLED) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass
class Result:
    threshold: float
    recall: float
    precision: float | None  # None: nothing found
    found_paraphrases: int
    found_distinct_labelled: int
    found_other: int
    missed: list[str]
    false_positives: list[str]


def embed_pairs(rows: list[dict], embedder) -> np.ndarray:
    """Unit vectors, rows ``2k`` (text a of row k) and ``2k + 1`` (text b)."""
    return embedder.embed([t for r in rows for t in (r["a"], r["b"])])


def pair_cosines(rows: list[dict], vectors: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", vectors[0::2], vectors[1::2])


def measure(rows: list[dict], vectors: np.ndarray, threshold: float) -> Result:
    from scenario_forge.curation.dedup import near_duplicate_pairs

    found = {tuple(sorted(p)) for p in near_duplicate_pairs(vectors, threshold).tolist()}
    labelled = {(2 * k, 2 * k + 1): r for k, r in enumerate(rows)}
    tp = [labelled[p]["id"] for p in found if p in labelled and labelled[p]["paraphrase"]]
    distinct = [labelled[p]["id"] for p in found if p in labelled and not labelled[p]["paraphrase"]]
    other = [f"{rows[i // 2]['id']}.{'ab'[i % 2]}~{rows[j // 2]['id']}.{'ab'[j % 2]}" for i, j in found if (i, j) not in labelled]
    positives = sum(r["paraphrase"] for r in rows)
    return Result(
        threshold=threshold,
        recall=len(tp) / positives,
        precision=len(tp) / len(found) if found else None,
        found_paraphrases=len(tp),
        found_distinct_labelled=len(distinct),
        found_other=len(other),
        missed=sorted(r["id"] for r in rows if r["paraphrase"] and r["id"] not in tp),
        false_positives=sorted(distinct + other),
    )


def separation(rows: list[dict], vectors: np.ndarray) -> dict[str, float]:
    """Threshold-free figures: AUC (share of (paraphrase, distinct) pair-of-pairs where the paraphrase
    pair is closer) and how many paraphrase pairs are mutual nearest neighbours among all texts."""
    cosines = pair_cosines(rows, vectors)
    para = np.array([c for r, c in zip(rows, cosines) if r["paraphrase"]])
    dist = np.array([c for r, c in zip(rows, cosines) if not r["paraphrase"]])
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    nn = sims.argmax(axis=1)
    mutual = sum(int(nn[2 * k] == 2 * k + 1 and nn[2 * k + 1] == 2 * k) for k, r in enumerate(rows) if r["paraphrase"])
    return {"auc": float((para[:, None] > dist[None, :]).mean()), "mutual_nearest": mutual, "paraphrases": len(para)}


def cosine_summary(rows: list[dict], cosines: np.ndarray) -> dict[str, dict[str, float]]:
    out = {}
    for label in (True, False):
        values = [float(c) for r, c in zip(rows, cosines) if r["paraphrase"] is label]
        out["paraphrase" if label else "distinct"] = {
            "n": len(values), "min": min(values), "median": statistics.median(values), "max": max(values)
        }
    return out


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--thresholds", type=float, nargs="*", default=list(SWEEP))
    parser.add_argument("--labelled", type=Path, default=LABELLED)
    parser.add_argument("--show-pairs", action="store_true", help="print every labelled pair's cosine")
    args = parser.parse_args(argv)

    from scenario_forge.config import CurationConfig
    from scenario_forge.curation.embed import get_embedder

    rows = load_pairs(args.labelled)
    embedder = get_embedder(None, None)
    vectors = embed_pairs(rows, embedder)
    cosines = pair_cosines(rows, vectors)
    default = CurationConfig().threshold
    positives = sum(r["paraphrase"] for r in rows)
    print(f"{len(rows)} labelled pairs ({positives} paraphrases, {len(rows) - positives} distinct), "
          f"{len(vectors)} texts, embedder {embedder.model_id}; curation default threshold {default}")
    for name, s in cosine_summary(rows, cosines).items():
        print(f"  cosine of {name:10s} pairs: min {s['min']:.3f}  median {s['median']:.3f}  max {s['max']:.3f}")
    sep = separation(rows, vectors)
    print(f"  AUC (a paraphrase pair closer than a distinct pair) {sep['auc']:.3f}; paraphrase pairs that are mutual "
          f"nearest neighbours among all {len(vectors)} texts: {sep['mutual_nearest']}/{sep['paraphrases']}")
    if args.show_pairs:
        for r, c in sorted(zip(rows, cosines), key=lambda rc: -rc[1]):
            print(f"    {c:.3f}  {'P' if r['paraphrase'] else 'D'}  {r['id']}")
    print(f"\n{'threshold':>9} {'recall':>7} {'precision':>9} {'found P':>8} {'found D':>8} {'other':>6}")
    results = []
    for t in sorted(set(args.thresholds) | {default}):
        res = measure(rows, vectors, t)
        results.append(res)
        precision = f"{res.precision:.3f}" if res.precision is not None else "n/a"
        mark = "  <- curation default" if t == default else ""
        print(f"{t:>9.3f} {res.recall:>7.3f} {precision:>9} {res.found_paraphrases:>8} {res.found_distinct_labelled:>8} "
              f"{res.found_other:>6}{mark}")
    return results


if __name__ == "__main__":
    main()
