"""Near-duplicate structure over one agent's vectors: batched numpy, no Python O(n²) loops.

``similar_pairs`` multiplies a block of unit rows by the whole matrix (one BLAS call per block),
keeps the pairs at or above the threshold, and yields between blocks so a background pass stays
within its CPU share. 10,000 × 384 takes about 40 blocks. The groupings built on the pairs:

* ``leader_groups`` — each group is a leader plus the not-yet-grouped memories similar to *it*
  (no chaining: A~B and B~C do not put A with C unless A~C). Used by deduplication.
* ``dbscan`` — density clusters (core points with ≥ ``min_samples`` neighbours within
  ``epsilon``, plus their border points). Used by consolidation and compression.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from dakera_server.engine.ann import VectorIndex

__all__ = ["Pairs", "dbscan", "leader_groups", "similar_pairs", "unit_matrix"]

BLOCK_CELLS = 2_000_000  # rows × n per block: ~8 MB of float32 scores
MAX_NEIGHBOURS = 256  # per row; a huge cluster of identical texts must not explode memory
ROWS_PER_CHECKPOINT = 500

Pairs = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]


def unit_matrix(
    index: VectorIndex, ids: Sequence[str], checkpoint: Callable[[], None] = lambda: None
) -> npt.NDArray[np.float32]:
    """The vectors of ``ids`` as unit rows (a missing vector is a zero row: similar to nothing).

    A Python loop over the index: ``checkpoint`` runs every ``ROWS_PER_CHECKPOINT`` rows, so a
    background pass lets go of the GIL often enough for requests to run.
    """
    matrix = np.zeros((len(ids), index.dimension), dtype=np.float32)
    for row, memory_id in enumerate(ids):
        vector = index.get_vector(memory_id)
        if vector is not None:
            matrix[row] = vector
        if row % ROWS_PER_CHECKPOINT == ROWS_PER_CHECKPOINT - 1:
            checkpoint()
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix


def similar_pairs(
    matrix: npt.NDArray[np.float32],
    threshold: float,
    *,
    buckets: npt.NDArray[np.int64] | None = None,
    checkpoint: Callable[[], None] = lambda: None,
) -> Pairs:
    """Pairs ``(i, j, cosine)`` with ``i < j`` and cosine ≥ ``threshold``.

    With ``buckets``, only rows of the same bucket pair up (same session, say).
    """
    n = matrix.shape[0]
    lefts: list[npt.NDArray[np.int64]] = []
    rights: list[npt.NDArray[np.int64]] = []
    scores: list[npt.NDArray[np.float32]] = []
    block = max(8, min(1024, BLOCK_CELLS // max(n, 1)))
    for start in range(0, n, block):
        stop = min(n, start + block)
        sims = matrix[start:stop] @ matrix[start:].T  # only columns ≥ start can be j > i
        rows, cols = np.nonzero(sims >= threshold)
        cols_global = cols + start
        rows_global = rows + start
        keep = cols_global > rows_global
        if buckets is not None:
            keep &= buckets[rows_global] == buckets[cols_global]
        rows, cols, rows_global, cols_global = (
            rows[keep],
            cols[keep],
            rows_global[keep],
            cols_global[keep],
        )
        values = sims[rows, cols]
        rows_global, cols_global, values = _cap_per_row(rows_global, cols_global, values)
        lefts.append(rows_global.astype(np.int64))
        rights.append(cols_global.astype(np.int64))
        scores.append(values.astype(np.float32))
        checkpoint()
    if not lefts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), np.zeros(0, dtype=np.float32)
    return np.concatenate(lefts), np.concatenate(rights), np.concatenate(scores)


def _cap_per_row(
    rows: npt.NDArray[np.intp], cols: npt.NDArray[np.intp], values: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.float32]]:
    if rows.size == 0:
        return rows, cols, values
    counts = np.bincount(rows)
    if counts.max() <= MAX_NEIGHBOURS:
        return rows, cols, values
    # Keep each row's best MAX_NEIGHBOURS: sort by (row, -score) and cut each run.
    order = np.lexsort((-values, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    starts = np.searchsorted(rows, rows, side="left")
    keep = (np.arange(rows.size) - starts) < MAX_NEIGHBOURS
    return rows[keep], cols[keep], values[keep]


def _adjacency(n: int, pairs: Pairs, checkpoint: Callable[[], None]) -> list[list[int]]:
    neighbours: list[list[int]] = [[] for _ in range(n)]
    left, right, _ = pairs
    for step, (i, j) in enumerate(zip(left.tolist(), right.tolist(), strict=True)):
        neighbours[i].append(j)
        neighbours[j].append(i)
        if step % ROWS_PER_CHECKPOINT == ROWS_PER_CHECKPOINT - 1:
            checkpoint()
    return neighbours


def leader_groups(
    n: int,
    pairs: Pairs,
    priority: Sequence[int],
    checkpoint: Callable[[], None] = lambda: None,
) -> list[list[int]]:
    """Groups of ≥ 2: in ``priority`` order, an ungrouped row leads its ungrouped neighbours."""
    neighbours = _adjacency(n, pairs, checkpoint)
    taken = np.zeros(n, dtype=bool)
    groups = []
    for step, leader in enumerate(priority):
        if step % ROWS_PER_CHECKPOINT == ROWS_PER_CHECKPOINT - 1:
            checkpoint()
        if taken[leader] or not neighbours[leader]:
            continue
        members = [j for j in neighbours[leader] if not taken[j]]
        if not members:
            continue
        taken[leader] = True
        taken[members] = True
        groups.append([leader, *sorted(members)])
    return groups


def dbscan(
    n: int, pairs: Pairs, min_samples: int, checkpoint: Callable[[], None] = lambda: None
) -> list[list[int]]:
    """DBSCAN clusters (lists of row indexes, each ≥ 2 rows); noise is left out."""
    neighbours = _adjacency(n, pairs, checkpoint)
    core = np.array([len(found) + 1 >= min_samples for found in neighbours], dtype=bool)
    label = np.full(n, -1, dtype=np.int64)
    clusters: list[list[int]] = []
    for seed in range(n):
        if seed % ROWS_PER_CHECKPOINT == ROWS_PER_CHECKPOINT - 1:
            checkpoint()
        if not core[seed] or label[seed] >= 0 or not neighbours[seed]:
            continue
        cluster_id = len(clusters)
        members = [seed]
        label[seed] = cluster_id
        frontier = [seed]
        while frontier:
            point = frontier.pop()
            for other in neighbours[point]:
                if label[other] >= 0:
                    continue
                label[other] = cluster_id
                members.append(other)
                if core[other]:
                    frontier.append(other)
        if len(members) >= 2:
            clusters.append(sorted(members))
    return clusters
