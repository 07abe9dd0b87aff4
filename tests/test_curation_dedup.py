"""Near-duplicate search: exact and LSH paths agree, the LSH finds planted pairs, the train/held-out
guard, clusters, the keep-one policy and the store's persistent index. Synthetic vectors only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scenario_forge.curation import dedup, lsh
from scenario_forge.curation.dedup import (
    components,
    contaminated,
    cross_split_pairs,
    flat_pairs,
    keep_one,
    near_duplicate_pairs,
    nearest_neighbour_similarity,
    uses_flat,
)
from scenario_forge.curation.index import StoreIndex
from scenario_forge.curation.lsh import lsh_pairs, plan_lsh


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def planted(n: int, pairs: int, d: int = 384, lo: float = 0.93, hi: float = 0.99, seed: int = 0):
    """Random unit vectors with ``pairs`` near-duplicate pairs at cosine in [lo, hi]."""
    rng = np.random.default_rng(seed)
    x = unit(rng.standard_normal((n, d)))
    idx = rng.choice(n, 2 * pairs, replace=False)
    src, dst = idx[:pairs], idx[pairs:]
    rho = rng.uniform(lo, hi, pairs)
    noise = rng.standard_normal((pairs, d))
    noise -= (noise * x[src]).sum(1, keepdims=True) * x[src]
    noise = unit(noise)
    x[dst] = unit(rho[:, None] * x[src] + np.sqrt(1 - rho**2)[:, None] * noise)
    return x, np.sort(np.stack([src, dst], 1), axis=1)


def clustered(n: int, d: int = 64, seed: int = 1) -> np.ndarray:
    """Tight clusters (many pairs well above 0.9), loose ones (pairs around 0.6-0.85) and noise."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((12, d)))
    spread = np.repeat([0.05, 0.25, 0.6], 4)
    labels = rng.integers(0, 12, n)
    return unit(centres[labels] + spread[labels, None] * rng.standard_normal((n, d)) / np.sqrt(d))


def test_threshold_must_be_in_the_unit_interval():
    x = unit(np.eye(3))
    for bad in (0.0, -0.5, 1.01):
        with pytest.raises(ValueError, match="threshold must be in"):
            near_duplicate_pairs(x, bad)
    assert near_duplicate_pairs(x, 1.0).shape == (0, 2)
    assert near_duplicate_pairs(np.concatenate([x, x[:1]]), 1.0).tolist() == [[0, 3]]


def test_lsh_gives_the_same_pairs_as_exact_search_on_small_inputs():
    x, truth = planted(3000, 60)
    exact = flat_pairs(x, 0.9)
    assert set(map(tuple, truth.tolist())) <= set(map(tuple, exact.tolist()))
    assert np.array_equal(lsh_pairs(x, 0.9), exact)
    # Clustered data: tens of thousands of pairs, some a hair above the threshold. The LSH never
    # returns a false pair; it may miss a rare pair close to the threshold (its recall is planned
    # at 0.999 for pairs exactly at the threshold at this size).
    c = clustered(1500)
    for t in (0.9, 0.97):
        want, got = flat_pairs(c, t), lsh_pairs(c, t)
        assert len(want) > 1000
        want_set, got_set = set(map(tuple, want.tolist())), set(map(tuple, got.tolist()))
        assert got_set <= want_set
        missed = np.array(sorted(want_set - got_set), dtype=np.int64).reshape(-1, 2)
        assert (np.einsum("ij,ij->i", c[missed[:, 0]], c[missed[:, 1]]) < t + 0.05).all()
        assert len(missed) <= 0.0002 * len(want)
    # Against another set (the cross-run index, train vs held-out).
    y = np.concatenate([x[truth[:20, 1]], unit(np.random.default_rng(5).standard_normal((500, 384)))])
    assert np.array_equal(lsh_pairs(x, 0.9, y), flat_pairs(x, 0.9, y))


def test_identical_vectors_in_one_big_bucket_are_joined_exactly():
    rng = np.random.default_rng(2)
    x = unit(rng.standard_normal((400, 32)))
    x[100:250] = x[7]  # 151 copies of one vector: a bucket far over MAX_RUN in every table
    got = lsh_pairs(x, 0.95)
    assert np.array_equal(got, flat_pairs(x, 0.95))
    assert len(got) == 151 * 150 // 2


def test_auto_uses_exact_search_below_the_cutoff_and_the_lsh_above(monkeypatch):
    calls = []
    monkeypatch.setattr(dedup, "lsh_pairs", lambda *a, **k: calls.append(a) or lsh.lsh_pairs(*a, **k))
    x, _ = planted(600, 10, d=64)
    small = near_duplicate_pairs(x, 0.9)
    assert calls == [] and uses_flat(600)
    monkeypatch.setattr(dedup, "FLAT_RATE", 10)
    assert np.array_equal(near_duplicate_pairs(x, 0.9), small) and len(calls) == 1


def test_lsh_recall_and_precision_on_planted_pairs_near_the_threshold():
    x, truth = planted(20_000, 200, lo=0.905, hi=0.99, seed=3)
    got = lsh_pairs(x, 0.9)
    sims = np.einsum("ij,ij->i", x[got[:, 0]], x[got[:, 1]])
    assert (sims >= 0.9 - 1e-6).all()  # precision 1 by construction
    found = set(map(tuple, got.tolist()))
    recall = np.mean([tuple(p) in found for p in truth.tolist()])
    assert recall >= 0.97


def test_plan_lsh_meets_its_target_and_needs_more_tables_for_lower_thresholds():
    plans = {t: plan_lsh(1_000_000, None, t) for t in (0.8, 0.9, 0.95)}
    assert all(p.expected_recall >= 0.99 for p in plans.values())
    assert plans[0.8].tables > plans[0.9].tables > plans[0.95].tables
    assert plan_lsh(100, 1_000_000, 0.9).key_groups <= plans[0.9].key_groups
    with pytest.raises(ValueError):
        plan_lsh(10, None, 0.0)


def test_cross_split_guard_finds_every_contaminated_heldout_row():
    train, _ = planted(2000, 1, d=64, seed=4)
    rng = np.random.default_rng(6)
    heldout = unit(rng.standard_normal((300, 64)))
    leaked = [3, 50, 299]
    heldout[leaked] = unit(train[[10, 20, 30]] + 0.05 * rng.standard_normal((3, 64)) / 8)
    pairs = cross_split_pairs(train, heldout, 0.9)
    assert sorted(pairs[:, 1].tolist()) == leaked and sorted(pairs[:, 0].tolist()) == [10, 20, 30]
    mask = contaminated(heldout, train, 0.9)
    assert mask.sum() == 3 and mask[leaked].all()


def test_components_and_keep_one():
    pairs = np.array([[0, 1], [1, 2], [4, 5]])
    assert components(6, pairs) == [[0, 1, 2], [4, 5]]
    # A chain 0~1~2 with 0 !~ 2: visiting 1 first drops both ends, visiting 0 first keeps 0 and 2.
    assert keep_one(pairs, [1, 0, 2, 3, 4, 5]) == {0: 1, 2: 1, 5: 4}
    assert keep_one(pairs, [0, 1, 2, 3, 5, 4]) == {1: 0, 4: 5}
    blocked = [False, True, False, False, False, False]
    assert keep_one(pairs, [1, 0, 2, 3, 4, 5], blocked) == {5: 4}


def test_nearest_neighbour_similarity():
    x = unit(np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]))
    nn = nearest_neighbour_similarity(x)
    assert nn[0] == pytest.approx(nn[1]) and nn[0] > 0.99 and nn[2] < 0.2
    assert np.isnan(nearest_neighbour_similarity(x[:1])).all()


def test_store_index_segments_are_per_run_and_atomic(tmp_path: Path):
    index = StoreIndex(tmp_path, "model@abc")
    for run, n in (("run-a", 3), ("run-b", 2)):
        (tmp_path / run).mkdir()
        (tmp_path / run / "scenarios.parquet").write_bytes(b"x")
        index.save(run, [f"{run}-{i}" for i in range(n)], unit(np.random.default_rng(n).standard_normal((n, 8))))
    view = index.load()
    assert view.ids == ["run-a-0", "run-a-1", "run-a-2", "run-b-0", "run-b-1"] and view.vectors.shape == (5, 8)
    assert index.load(exclude={"run-a"}).run_ids == ["run-b", "run-b"]
    index.save("run-a", ["run-a-9"], unit(np.ones((1, 8))))  # re-curation replaces the segment
    assert index.load().ids == ["run-a-9", "run-b-0", "run-b-1"]
    (tmp_path / "run-b" / "scenarios.parquet").unlink()
    view = index.load()
    assert view.ids == ["run-a-9"] and view.stale == ["run-b"]
    assert sorted(p.name for p in index.folder.iterdir()) == ["run-a.npz", "run-b.npz"]  # no temp files left
    assert StoreIndex(tmp_path, "other-model").load().ids == []


def test_a_run_that_kept_nothing_does_not_break_the_store_index(tmp_path: Path):
    index = StoreIndex(tmp_path, "model@abc")
    for run in ("run-a", "run-empty"):
        (tmp_path / run).mkdir()
        (tmp_path / run / "scenarios.parquet").write_bytes(b"x")
    index.save("run-a", ["a-0", "a-1"], unit(np.random.default_rng(0).standard_normal((2, 8))))
    index.save("run-empty", [], np.zeros((0, 0)))  # what curation saves when a run keeps no rows
    view = index.load()
    assert view.ids == ["a-0", "a-1"] and view.vectors.shape == (2, 8)
