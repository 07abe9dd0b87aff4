"""Near-duplicate search over unit vectors, clusters, and the keep-one policy.

:func:`near_duplicate_pairs` is exact (faiss flat range search) while the all-pairs product is
small, and switches to the LSH join in :mod:`.lsh` above ``FLAT_MAX_PRODUCT``; both finish with the
same exact check, so on inputs where the LSH finds every pair their results are identical.
:func:`cross_split_pairs` is the contamination guard for held-out splits: it stays exact up to a
much larger size, because "zero near-duplicates in train" is a promise, not a statistic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .lsh import EPS, lsh_pairs, verify_pairs

#: Exact search costs ~ n_x * n_y dot products, the LSH join ~ (n_x + n_y) sketches plus its
#: tables; ``near_duplicate_pairs`` searches exactly while ``n_x * n_y <= FLAT_RATE * (n_x + n_y)``
#: (a set of up to 5,000 vectors against itself; 100 new vectors against any index size).
#: Measured on 2 cores (shared): 10k vectors take 2 s exact and 0.3 s with the LSH, 40k 43 s and
#: 1.5 s; below ~5k the exact search is well under a second.
FLAT_RATE = 2_500
#: ``cross_split_pairs`` stays exact up to this product (~1 min on 2 cores), then uses the LSH
#: tuned for recall 0.999 at the threshold.
EXACT_SPLIT_MAX_PRODUCT = 100_000 * 20_000


def _check(threshold: float) -> None:
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")


def _as_rows(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-d array of vectors, got shape {x.shape}")
    return x


def uses_flat(n_x: int, n_y: int | None = None) -> bool:
    """Whether ``near_duplicate_pairs(method="auto")`` searches exactly for these sizes.

    >>> uses_flat(5_000), uses_flat(5_001), uses_flat(100, 10_000_000), uses_flat(5_000, 1_000_000)
    (True, False, True, False)
    """
    if n_y is None:
        return n_x * n_x <= FLAT_RATE * 2 * n_x
    return n_x * n_y <= FLAT_RATE * (n_x + n_y)


def flat_pairs(x: np.ndarray, threshold: float, y: np.ndarray | None = None) -> np.ndarray:
    """Exact search: every pair at or above the threshold (faiss flat range search)."""
    import faiss

    _check(threshold)
    x = _as_rows(x)
    base = x if y is None else _as_rows(y)
    if len(x) == 0 or len(base) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    # Search a hair below the threshold, then apply the same exact check as the LSH path.
    lims, _, ids = index.range_search(x, threshold - 1e-4)
    lims = lims.astype(np.int64)
    rows = np.repeat(np.arange(len(x), dtype=np.int64), np.diff(lims))
    pairs = np.stack([rows, ids.astype(np.int64)], axis=1)
    if y is None:
        pairs = pairs[pairs[:, 0] < pairs[:, 1]]
    return verify_pairs(x, base, pairs, threshold)


def near_duplicate_pairs(
    x: np.ndarray, threshold: float, y: np.ndarray | None = None, *, method: str = "auto"
) -> np.ndarray:
    """Index pairs ``(i, j)`` with ``x[i] . v[j] >= threshold`` (``v`` is ``y``, or ``x`` itself).

    Without ``y``: pairs within ``x`` with ``i < j``. With ``y``: ``i`` indexes ``x``, ``j``
    indexes ``y``. Rows must be unit vectors (cosine = dot product). Returns an ``(k, 2)`` int64
    array sorted by ``(i, j)``. ``method``: ``auto`` (exact below :data:`FLAT_MAX_PRODUCT`),
    ``flat`` or ``lsh``.
    """
    _check(threshold)
    x = _as_rows(x)
    y = None if y is None else _as_rows(y)
    if method == "flat" or (method == "auto" and uses_flat(len(x), None if y is None else len(y))):
        return flat_pairs(x, threshold, y)
    if method not in ("auto", "lsh"):
        raise ValueError(f"method must be auto, flat or lsh, got {method!r}")
    return lsh_pairs(x, threshold, y)


def cross_split_pairs(train: np.ndarray, heldout: np.ndarray, threshold: float) -> np.ndarray:
    """``(i_train, j_heldout)`` pairs at or above the threshold: the train/held-out guard.

    Exact up to :data:`EXACT_SPLIT_MAX_PRODUCT` vector pairs, LSH with recall 0.999 at the
    threshold beyond. Drop (or move to train) every held-out row that appears in a pair.
    """
    _check(threshold)
    train, heldout = _as_rows(train), _as_rows(heldout)
    if len(train) * len(heldout) <= EXACT_SPLIT_MAX_PRODUCT:
        return flat_pairs(train, threshold, heldout)
    return lsh_pairs(train, threshold, heldout, target_recall=0.999)


def contaminated(heldout: np.ndarray, train: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean mask over ``heldout``: True where a train vector is a near-duplicate."""
    mask = np.zeros(len(heldout), dtype=bool)
    mask[cross_split_pairs(train, heldout, threshold)[:, 1]] = True
    return mask


def components(n: int, pairs: np.ndarray) -> list[list[int]]:
    """Connected components (size >= 2) of the near-duplicate graph, each sorted, largest first.

    >>> components(5, np.array([[0, 1], [1, 2], [3, 4]]))
    [[0, 1, 2], [3, 4]]
    """
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs.tolist():
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    out = [g for g in groups.values() if len(g) > 1]
    return sorted(out, key=lambda g: (-len(g), g[0]))


def keep_one(pairs: np.ndarray, order: Sequence[int], blocked: Sequence[bool] | None = None) -> dict[int, int]:
    """The greedy keep-one policy: which items to drop, and the kept item each one duplicates.

    Items are visited in ``order`` (best first); an item is kept unless it is a near-duplicate of
    an item already kept. Items marked ``blocked`` are dropped beforehand and never block others.
    Returns ``{dropped item: kept item it duplicates}``; every kept pair is then at least the
    threshold apart, and a chain a~b~c with a !~ c keeps both a and c.

    >>> keep_one(np.array([[0, 1], [1, 2]]), order=[1, 0, 2])
    {0: 1, 2: 1}
    >>> keep_one(np.array([[0, 1], [1, 2]]), order=[0, 1, 2])
    {1: 0}
    """
    neighbours: dict[int, list[int]] = {}
    for a, b in pairs.tolist():
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    kept: set[int] = set()
    dropped: dict[int, int] = {}
    for item in order:
        if blocked is not None and blocked[item]:
            continue
        dup = next((j for j in sorted(neighbours.get(item, ())) if j in kept), None)
        if dup is None:
            kept.add(item)
        else:
            dropped[item] = dup
    return dropped


def nearest_neighbour_similarity(x: np.ndarray, max_rows: int = 50_000, seed: int = 0) -> np.ndarray:
    """Each row's highest cosine to another row (NaN for a lone row); exact.

    Above ``max_rows`` rows a seeded random sample of ``max_rows`` is used (the report says so).
    """
    import faiss

    x = _as_rows(x)
    if len(x) > max_rows:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), max_rows, replace=False))]
    if len(x) < 2:
        return np.full(len(x), np.nan, dtype=np.float32)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    sims, ids = index.search(x, 2)
    # The best hit is normally the row itself; with exact duplicates it may be the twin.
    self_first = ids[:, 0] == np.arange(len(x))
    out = np.where(self_first, sims[:, 1], sims[:, 0])
    return np.clip(out, -1.0, 1.0 + EPS).astype(np.float32)
