"""Near-duplicate search that scales: sign-random-projection LSH with exact verification.

Why this and not an IVF index or a graph: near-duplicate detection is an all-pairs join at a high
cosine threshold, and on this project's 2-core machines the measured alternatives were either
quadratic (exact search: 58 s at 100k vectors, so ~1.5 h at 1M) or lost recall exactly where
partitions are weakest (faiss IVF in a 64-d projection: recall 0.79 at nprobe 2 and 0.99 only at
nprobe 16, which costs ~2e12 flops at 1M vectors; faiss HNSW and usearch already take 25-40 s at
100k). See ``docs/curation.md``.

How it works:

1. Every vector gets a ``pool_bits``-bit sketch: the signs of its projections on random
   hyperplanes (one BLAS matmul, done in chunks). Two vectors at cosine ``c`` disagree on each
   bit with probability ``arccos(c) / pi``.
2. The sketch is cut into 4-bit groups. A *table* keys every vector by ``key_groups`` randomly
   chosen groups; vectors with the same key land in the same bucket. A pair at cosine >= threshold
   shares a bucket in at least one of ``tables`` tables with probability ``expected_recall`` or
   more (computed for the threshold itself when the plan is made; pairs above it do better).
3. Pairs in a bucket are filtered by the Hamming distance of their full sketches (a true pair
   stays within a bound it exceeds with probability < 1e-6), then every surviving pair is checked
   exactly: only pairs with ``x[i] . y[j] >= threshold`` are returned. Precision is 1 by
   construction; recall is what the plan promises.

Everything is seeded, so the same inputs give the same pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

#: Verification tolerance: a pair counts when its float32 dot product is >= threshold - EPS.
EPS = 1e-6
GROUP_BITS = 4
#: Buckets bigger than this are joined exactly with one matrix product instead of pair by pair.
MAX_RUN = 64
_CHUNK = 65536
#: Candidate pairs held before duplicates are squeezed out (16 bytes each).
_COMPACT_AT = 20_000_000


@dataclass(frozen=True)
class LSHPlan:
    """The parameters of one search, chosen by :func:`plan_lsh`."""

    threshold: float
    pool_bits: int
    key_groups: int
    tables: int
    max_hamming: int
    expected_recall: float
    seed: int


def _bit_flip_probability(threshold: float) -> float:
    return math.acos(max(-1.0, min(1.0, threshold))) / math.pi


def _clean_groups(threshold: float, pool_bits: int, samples: np.ndarray) -> np.ndarray:
    """For simulated pairs at cosine == threshold: how many 4-bit groups have no differing bit.

    ``samples`` are uniform draws (pairs x pool_bits): a bit differs where the draw is below the
    flip probability."""
    groups = pool_bits // GROUP_BITS
    differs = samples < _bit_flip_probability(threshold)
    clean: np.ndarray = (~differs.reshape(len(samples), groups, GROUP_BITS).any(axis=2)).sum(axis=1)
    return clean


def _recall(clean: np.ndarray, groups: int, key_groups: int, tables: int) -> float:
    """Probability that a pair shares a bucket in at least one of ``tables`` tables.

    Given its clean groups, each table (``key_groups`` groups drawn at random) is a hit with
    probability C(clean, g) / C(groups, g), independently of the other tables."""
    total = math.comb(groups, key_groups)
    q = np.array([math.comb(c, key_groups) / total for c in range(groups + 1)])[clean]
    return float(np.mean(1.0 - (1.0 - q) ** tables))


def plan_lsh(
    n_x: int,
    n_y: int | None,
    threshold: float,
    *,
    target_recall: float = 0.99,
    pool_bits: int = 256,
    max_tables: int = 2000,
    seed: int = 0,
) -> LSHPlan:
    """Parameters for a search over ``n_x`` vectors (against ``n_y`` others, or within ``x``).

    For each key length (2-8 groups of 4 bits) the number of tables is the smallest that reaches
    ``target_recall`` for pairs exactly at ``threshold`` (pairs above it do better); the plan
    with the lowest estimated cost wins, a table costing one sort of all vectors plus one check
    per random pair its buckets hold (``pairs / 16**groups``).
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if pool_bits % 64:
        raise ValueError("pool_bits must be a multiple of 64")
    n = max(2, n_x + (n_y or 0))
    pair_space = n_x * n_y if n_y is not None else n_x * (n_x - 1) / 2
    groups = pool_bits // GROUP_BITS
    clean = _clean_groups(threshold, pool_bits, np.random.default_rng(seed + 7).random((4000, pool_bits)))
    best: tuple[float, int, int] | None = None
    fallback: tuple[float, int] = (-1.0, 2)
    for key_groups in range(2, min(8, groups) + 1):
        top = _recall(clean, groups, key_groups, max_tables)
        if top < target_recall:
            fallback = max(fallback, (top, key_groups))
            continue
        lo, hi = 1, max_tables
        while lo < hi:  # smallest table count reaching the target
            mid = (lo + hi) // 2
            if _recall(clean, groups, key_groups, mid) >= target_recall:
                hi = mid
            else:
                lo = mid + 1
        cost = lo * (n + pair_space / 16**key_groups)
        if best is None or cost < best[0]:
            best = (cost, key_groups, lo)
    if best is None:  # the target is out of reach: the most recall max_tables can buy
        key_groups, tables = fallback[1], max_tables
    else:
        _, key_groups, tables = best
    return LSHPlan(
        threshold=threshold,
        pool_bits=pool_bits,
        key_groups=key_groups,
        tables=tables,
        max_hamming=_hamming_bound(pool_bits, _bit_flip_probability(threshold)),
        expected_recall=_recall(clean, groups, key_groups, tables),
        seed=seed,
    )


def _sketch(vectors: list[np.ndarray], hyperplanes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sign sketches as pool/64 rows of n uint64 words and 4-bit group codes (groups, n uint8)."""
    n = sum(len(v) for v in vectors)
    pool = hyperplanes.shape[1]
    packed = np.empty((n, pool // 8), dtype=np.uint8)
    start = 0
    for block in vectors:
        for s in range(0, len(block), _CHUNK):
            chunk = np.ascontiguousarray(block[s : s + _CHUNK], dtype=np.float32)
            packed[start : start + len(chunk)] = np.packbits(chunk @ hyperplanes > 0, axis=1)
            start += len(chunk)
    # Each byte holds two 4-bit groups: high nibble, then low nibble.
    groups = np.empty((pool // GROUP_BITS, n), dtype=np.uint8)
    groups[0::2] = (packed >> 4).T
    groups[1::2] = (packed & 15).T
    return np.ascontiguousarray(packed.view(np.uint64).T), groups


def _hamming_bound(bits: int, flip: float) -> int:
    """A distance a pair at the threshold exceeds with probability below ~1e-7."""
    return min(bits, math.ceil(bits * flip + 5.5 * math.sqrt(bits * flip * (1 - flip)) + 1))


def _close(words: np.ndarray, a: np.ndarray, b: np.ndarray, max_hamming: int, first_bound: int) -> np.ndarray:
    """Which pairs' sketches differ in at most ``max_hamming`` bits.

    The first 64-bit word alone (bound ``first_bound``) rejects most random pairs, so the full
    distance is only computed for the few that remain.
    """
    dist = np.bitwise_count(words[0][a] ^ words[0][b])
    keep = np.flatnonzero(dist <= first_bound)
    total = dist[keep].astype(np.int32)
    for w in words[1:]:
        total += np.bitwise_count(w[a[keep]] ^ w[b[keep]])
    out = np.zeros(len(a), dtype=bool)
    out[keep[total <= max_hamming]] = True
    return out


def lsh_pairs(
    x: np.ndarray,
    threshold: float,
    y: np.ndarray | None = None,
    *,
    plan: LSHPlan | None = None,
    target_recall: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Pairs ``(i, j)`` with ``x[i] . v[j] >= threshold`` found through LSH (see the module doc).

    Same contract as :func:`scenario_forge.curation.dedup.near_duplicate_pairs`: ``(k, 2)`` int64,
    sorted, ``i < j`` within ``x`` when ``y`` is None. Inputs must be unit rows.
    ``target_recall`` (for pairs exactly at the threshold) defaults to 0.999 up to 100,000
    vectors, where more tables cost little, and 0.99 above.
    """
    x = np.asarray(x, dtype=np.float32)
    cross = y is not None
    y_arr = np.asarray(y, dtype=np.float32) if cross else x
    if len(x) == 0 or len(y_arr) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    total = len(x) + (len(y_arr) if cross else 0)
    if target_recall is None:
        target_recall = 0.999 if total <= 100_000 else 0.99
    plan = plan or plan_lsh(len(x), len(y_arr) if cross else None, threshold, target_recall=target_recall, seed=seed)
    join = _Join(x, y_arr if cross else None, threshold, plan)
    # Bucket joins are many small matrix products: multi-threaded BLAS only adds synchronisation
    # (measured 10x slower on 2 busy cores), so the table loop runs BLAS on one thread.
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(plan.tables):
            join.table()
    return join.pairs()


class _Join:
    """The state of one LSH join: sketches, the candidate pairs found so far, big-bucket blocks."""

    def __init__(self, x: np.ndarray, y: np.ndarray | None, threshold: float, plan: LSHPlan) -> None:
        self.x, self.y, self.threshold, self.plan = x, y, threshold, plan
        self.cross = y is not None
        self.n_x = len(x)
        self.rng = np.random.default_rng(plan.seed)
        hyperplanes = self.rng.standard_normal((x.shape[1], plan.pool_bits)).astype(np.float32)
        self.sketch, self.groups = _sketch([x, y] if y is not None else [x], hyperplanes)
        self.n = self.sketch.shape[1]
        self.first_bound = _hamming_bound(64, _bit_flip_probability(plan.threshold))
        self.index_bits = max(1, int(self.n - 1).bit_length())
        self.ids = np.arange(self.n, dtype=np.uint64)
        self.found: list[np.ndarray] = []
        self.pending = 0
        # Big buckets (dense clusters, repeated texts) come back table after table. ``block_of``
        # remembers the last exactly-joined block each vector was in: a bucket whose members
        # all share one block has had every pair computed already and is skipped.
        self.block_of = np.full(self.n, -1, dtype=np.int64)
        self.blocks = 0

    def table(self) -> None:
        """Key every vector by randomly chosen sketch groups, sort, and collect close pairs."""
        chosen = self.rng.choice(len(self.groups), self.plan.key_groups, replace=False)
        key = np.zeros(self.n, dtype=np.uint64)
        for g in chosen:
            key <<= np.uint64(GROUP_BITS)
            key |= self.groups[g]
        combined = np.sort((key << np.uint64(self.index_bits)) | self.ids)
        keys = combined >> np.uint64(self.index_bits)
        order = (combined & np.uint64((1 << self.index_bits) - 1)).astype(np.int64)
        same = keys[1:] == keys[:-1]
        if not same.any():
            return
        # Runs of equal keys: big runs are joined exactly, the rest pair by pair (offset 1, 2, ...).
        starts = np.flatnonzero(np.concatenate(([True], ~same)))
        lengths = np.diff(np.append(starts, self.n))
        for s, length in zip(starts[lengths > MAX_RUN], lengths[lengths > MAX_RUN]):
            self.exact_block(order[s : s + length])
            same[s : s + length - 1] = False
        run = same
        offset = 1
        while run.any():
            i = np.flatnonzero(run)
            a, b = order[i], order[i + offset]
            if self.cross:
                keep = (a < self.n_x) != (b < self.n_x)
                a, b = a[keep], b[keep]
            a, b = np.minimum(a, b), np.maximum(a, b)
            close = _close(self.sketch, a, b, self.plan.max_hamming, self.first_bound)
            if close.any():
                self.add(np.stack([a[close], b[close]], axis=1))
            offset += 1
            run = run[:-1] & same[offset - 1 :]

    def exact_block(self, members: np.ndarray) -> None:
        members = np.sort(members)
        first = self.block_of[members[0]]
        if first >= 0 and (self.block_of[members] == first).all():
            return
        self.block_of[members] = self.blocks
        self.blocks += 1
        t = self.threshold - EPS
        if self.y is not None:
            left, right = members[members < self.n_x], members[members >= self.n_x]
            for s in range(0, len(left), 4096):
                rows = left[s : s + 4096]
                i, j = np.nonzero(self.x[rows] @ self.y[right - self.n_x].T >= t)
                self.add(np.stack([rows[i], right[j]], axis=1))
            return
        for s in range(0, len(members), 4096):
            rows, later = members[s : s + 4096], members[s:]  # sorted: pairs (row, later member)
            i, j = np.nonzero(np.triu(self.x[rows] @ self.x[later].T >= t, k=1))
            self.add(np.stack([rows[i], later[j]], axis=1))

    def add(self, pairs: np.ndarray) -> None:
        self.found.append(pairs.astype(np.int64))
        self.pending += len(pairs)
        if self.pending > _COMPACT_AT:  # dense data: the same pairs again and again
            self.found = [self._unique()]
            self.pending = len(self.found[0])

    def _unique(self) -> np.ndarray:
        pairs = np.concatenate(self.found)
        codes = np.sort(pairs[:, 0] * self.n + pairs[:, 1])
        codes = codes[np.concatenate(([True], codes[1:] != codes[:-1]))]
        return np.stack([codes // self.n, codes % self.n], axis=1)

    def pairs(self) -> np.ndarray:
        if not self.found:
            return np.zeros((0, 2), dtype=np.int64)
        pairs = self._unique()
        if self.y is not None:
            pairs[:, 1] -= self.n_x
        return verify_pairs(self.x, self.y if self.y is not None else self.x, pairs, self.threshold)


def verify_pairs(x: np.ndarray, y: np.ndarray, pairs: np.ndarray, threshold: float) -> np.ndarray:
    """The candidate pairs whose exact dot product reaches the threshold, sorted by ``(i, j)``."""
    keep = np.zeros(len(pairs), dtype=bool)
    for s in range(0, len(pairs), _CHUNK):
        a, b = pairs[s : s + _CHUNK, 0], pairs[s : s + _CHUNK, 1]
        keep[s : s + _CHUNK] = np.einsum("ij,ij->i", x[a], y[b]) >= threshold - EPS
    out = pairs[keep].astype(np.int64)
    return out[np.lexsort((out[:, 1], out[:, 0]))]
