"""Near-duplicate search over unit vectors: pairs whose cosine similarity reaches a threshold."""

from __future__ import annotations

import numpy as np


def near_duplicate_pairs(x: np.ndarray, threshold: float, y: np.ndarray | None = None) -> np.ndarray:
    """Index pairs ``(i, j)`` with ``x[i] . v[j] >= threshold``.

    Without ``y``: pairs within ``x`` with ``i < j``. With ``y``: ``i`` indexes ``x``, ``j`` indexes ``y``.
    Returns an ``(k, 2)`` int64 array sorted by ``(i, j)``.
    """
    import faiss

    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    base = x if y is None else np.ascontiguousarray(y, dtype=np.float32)
    if len(x) == 0 or len(base) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    lims, _, ids = index.range_search(x, threshold - 1e-6)
    lims = lims.astype(np.int64)
    rows = np.repeat(np.arange(len(x), dtype=np.int64), np.diff(lims))
    pairs = np.stack([rows, ids.astype(np.int64)], axis=1)
    if y is None:
        pairs = pairs[pairs[:, 0] < pairs[:, 1]]
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    return pairs[order]
