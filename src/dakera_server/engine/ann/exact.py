"""Exact (brute-force) search: the index below the HNSW threshold and the fresh segment above it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from dakera_server.engine.ann.base import (
    Allow,
    F32Array,
    Metric,
    PartsSnapshot,
    ReadWriteLock,
    check_batch,
    check_params,
    check_query,
    exact_scores,
    top_k,
    unit_rows,
)


class ExactIndex(PartsSnapshot):
    """Brute-force search over a growing float32 matrix: exact results, O(n·dim) per query.

    Rows live in a matrix whose capacity doubles; an id↔row map finds them and a delete moves
    the last row into the hole (swap-remove), so the live rows stay contiguous for one matmul.
    Cosine rows are stored unit length with their original norm beside them.
    """

    kind = "exact"

    def __init__(self, dimension: int, metric: Metric = "cosine", *, capacity: int = 64) -> None:
        check_params(dimension, metric)
        self.dimension = dimension
        self.metric: Metric = metric
        self._matrix: F32Array = np.zeros((max(1, capacity), dimension), dtype=np.float32)
        self._norms: F32Array = np.zeros(max(1, capacity), dtype=np.float32)
        self._ids: list[str] = []
        self._rows: dict[str, int] = {}
        self._lock = ReadWriteLock()

    def upsert(self, ids: Sequence[str], vectors: F32Array) -> None:
        """See ``VectorIndex.upsert``."""
        batch_ids, batch = check_batch(ids, vectors, self.dimension)
        if not batch_ids:
            return
        if self.metric == "cosine":
            stored, norms = unit_rows(batch)
        else:
            stored, norms = batch, np.linalg.norm(batch, axis=1).astype(np.float32)
        with self._lock.write():
            rows = np.empty(len(batch_ids), dtype=np.int64)
            for i, id_ in enumerate(batch_ids):
                row = self._rows.get(id_)
                if row is None:
                    row = len(self._ids)
                    self._ids.append(id_)
                    self._rows[id_] = row
                rows[i] = row
            self._reserve(len(self._ids))
            self._matrix[rows] = stored
            self._norms[rows] = norms

    def _reserve(self, needed: int) -> None:
        capacity = self._matrix.shape[0]
        if needed <= capacity:
            return
        while capacity < needed:
            capacity *= 2
        matrix = np.zeros((capacity, self.dimension), dtype=np.float32)
        norms = np.zeros(capacity, dtype=np.float32)
        live = self._matrix.shape[0]
        matrix[:live] = self._matrix
        norms[:live] = self._norms
        self._matrix, self._norms = matrix, norms

    def delete(self, ids: Iterable[str]) -> int:
        """See ``VectorIndex.delete``."""
        removed = 0
        with self._lock.write():
            for id_ in ids:
                row = self._rows.pop(id_, None)
                if row is None:
                    continue
                removed += 1
                last = len(self._ids) - 1
                if row != last:
                    moved = self._ids[last]
                    self._matrix[row] = self._matrix[last]
                    self._norms[row] = self._norms[last]
                    self._ids[row] = moved
                    self._rows[moved] = row
                self._ids.pop()
        return removed

    def search(
        self, query: F32Array, k: int, allow: Allow | None = None, ef: int | None = None
    ) -> list[tuple[str, float]]:
        """See ``VectorIndex.search``; ``ef`` is ignored (the search is exhaustive)."""
        q = check_query(query, self.dimension, self.metric)
        if k <= 0:
            return []
        with self._lock.read():
            n = len(self._ids)
            scores = exact_scores(self.metric, self._matrix[:n], self._norms[:n], q)
            if allow is None:
                return top_k(scores, self._ids, k, None)
            ids = list(self._ids)
        # The predicate runs outside the lock: it may be slow and must not stall writers.
        return top_k(scores, ids, k, allow)

    def search_allowed(self, query: F32Array, k: int, allow: Allow) -> list[tuple[str, float]]:
        """Exact top ``k`` among the ids ``allow`` passes, scoring only those rows.

        The cheap path for a selective filter: one predicate call per id, then a matmul over
        the few allowed rows. ``allow`` runs under the read lock (writers wait for the scan).
        """
        q = check_query(query, self.dimension, self.metric)
        if k <= 0:
            return []
        with self._lock.read():
            rows = [row for row, id_ in enumerate(self._ids) if allow(id_)]
            if not rows:
                return []
            scores = exact_scores(self.metric, self._matrix[rows], self._norms[rows], q)
            return top_k(scores, [self._ids[row] for row in rows], k, None)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, id: object) -> bool:
        return id in self._rows

    def get_vector(self, id: str) -> F32Array | None:
        """See ``VectorIndex.get_vector``."""
        with self._lock.read():
            row = self._rows.get(id)
            if row is None:
                return None
            vector: F32Array = self._matrix[row].copy()
            if self.metric == "cosine":
                vector *= self._norms[row]
            return vector

    def cosines(self, ids: Sequence[str], query: F32Array) -> dict[str, float]:
        """See ``VectorIndex.cosines``."""
        query_norm = float(np.linalg.norm(query)) or 1.0
        with self._lock.read():
            found = [(id_, row) for id_ in ids if (row := self._rows.get(id_)) is not None]
            if not found:
                return {}
            rows = np.fromiter((row for _, row in found), dtype=np.int64, count=len(found))
            products = self._matrix[rows] @ query
            if self.metric != "cosine":  # raw rows: divide by their norms too
                products = products / np.maximum(self._norms[rows], np.float32(1e-30))
        scores = products / query_norm
        return {id_: float(score) for (id_, _), score in zip(found, scores, strict=True)}

    def tail(self, n: int) -> tuple[list[str], F32Array]:
        """The last ``n`` rows' ids and vectors as given: deleting them afterwards moves no row,
        which is why the background indexer takes its chunks from the end."""
        with self._lock.read():
            start = max(0, len(self._ids) - n)
            vectors = self._matrix[start : len(self._ids)].copy()
            if self.metric == "cosine":
                vectors *= self._norms[start : len(self._ids), None]
            return self._ids[start:], vectors

    def parts(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        with self._lock.read():
            n = len(self._ids)
            meta = {"dimension": self.dimension, "metric": self.metric, "ids": list(self._ids)}
            return meta, {"vectors": self._matrix[:n].copy(), "norms": self._norms[:n].copy()}

    @classmethod
    def from_parts(cls, meta: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> Self:
        ids = [str(x) for x in meta["ids"]]
        index = cls(int(meta["dimension"]), meta["metric"], capacity=max(64, len(ids)))
        vectors, norms = arrays["vectors"], arrays["norms"]
        if vectors.shape != (len(ids), index.dimension) or norms.shape != (len(ids),):
            raise ValueError("exact index snapshot arrays do not match its ids")
        index._matrix[: len(ids)] = vectors
        index._norms[: len(ids)] = norms
        index._ids = ids
        index._rows = {id_: row for row, id_ in enumerate(ids)}
        return index
