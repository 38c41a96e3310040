"""Approximate search with hnswlib.

hnswlib traps handled here (ARCHITECTURE "Known traps"): ``ef`` resets to 10 after a load, so it
is set after every restore; a query asking for more results than it can find raises "Cannot
return the results in a contiguous 2D array", so queries ask for ``min(k, live)`` and never run
concurrently with a mutation (readers-writer lock: hnswlib's search is not safe against a
concurrent insert, nmslib/hnswlib#562); deletes use ``mark_deleted`` and their slots are reused by
later inserts (``allow_replace_deleted``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Self

import hnswlib
import numpy as np
import numpy.typing as npt

from dakera_server.engine.ann.base import (
    FILTER_SAMPLE_SIZE,
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    HNSW_SPACE,
    SELECTIVE_MAX_FRACTION,
    SELECTIVE_MAX_IDS,
    Allow,
    F32Array,
    Metric,
    PartsSnapshot,
    ReadWriteLock,
    check_batch,
    check_params,
    check_query,
    unit_rows,
)
from dakera_server.engine.ann.exact import ExactIndex


class HnswIndex(PartsSnapshot):
    """Approximate search with hnswlib (M=16, ef_construction=100, ef_search >= 160).

    Ids map to integer labels; re-upserting an id marks its old label deleted and inserts a new
    one into a deleted slot, so updates do not grow the graph. Mutations take the write side of
    a readers-writer lock (hnswlib's resize and concurrent insert+query are unsafe); queries
    share the read side and run in parallel (hnswlib releases the GIL).

    The vectors are also kept in an ``ExactIndex`` row store (about 0.9x the graph's memory):
    hnswlib's ``get_items`` converts every float through a Python list (tens of ms for
    1000 x 384), which made exact search over a selective filter's few ids slower than walking the
    graph. With the rows at hand, that path costs one predicate scan plus a small matmul.
    """

    kind = "hnsw"

    def __init__(
        self,
        dimension: int,
        metric: Metric = "cosine",
        *,
        capacity: int = 1024,
        m: int = HNSW_M,
        ef_construction: int = HNSW_EF_CONSTRUCTION,
        ef_search: int = HNSW_EF_SEARCH,
    ) -> None:
        check_params(dimension, metric)
        self.dimension = dimension
        self.metric: Metric = metric
        self._ef_search = ef_search
        self._index = hnswlib.Index(space=HNSW_SPACE[metric], dim=dimension)
        self._index.init_index(
            max_elements=max(16, capacity),
            M=m,
            ef_construction=ef_construction,
            allow_replace_deleted=True,
        )
        self._index.set_ef(ef_search)
        self._rows = ExactIndex(dimension, metric, capacity=capacity)
        self._label_of: dict[str, int] = {}
        self._id_of: dict[int, str] = {}
        self._next_label = 0
        self._free_slots = 0  # marked-deleted slots hnswlib will reuse on the next inserts
        self._lock = ReadWriteLock()
        self._rng = random.Random(0x5EED)

    def upsert(self, ids: Sequence[str], vectors: F32Array, *, threads: int = 1) -> None:
        """See ``VectorIndex.upsert``; ``threads`` > 1 inserts in parallel (hnswlib)."""
        batch_ids, batch = check_batch(ids, vectors, self.dimension)
        if not batch_ids:
            return
        graph_rows = unit_rows(batch)[0] if self.metric == "cosine" else batch
        with self._lock.write():
            for id_ in batch_ids:
                old = self._label_of.get(id_)
                if old is not None:
                    self._index.mark_deleted(old)
                    del self._id_of[old]
                    self._free_slots += 1
            n = len(batch_ids)
            reused = min(n, self._free_slots)
            needed = self._index.element_count + n - reused
            capacity = self._index.max_elements
            if needed > capacity:
                self._index.resize_index(max(needed, 2 * capacity))
            labels = np.arange(self._next_label, self._next_label + n, dtype=np.uint64)
            self._index.add_items(graph_rows, labels, num_threads=threads, replace_deleted=True)
            self._free_slots -= reused
            self._next_label += n
            for id_, label in zip(batch_ids, labels.tolist(), strict=True):
                self._label_of[id_] = label
                self._id_of[label] = id_
            self._rows.upsert(batch_ids, batch)

    def delete(self, ids: Iterable[str]) -> int:
        """See ``VectorIndex.delete``."""
        removed = []
        with self._lock.write():
            for id_ in ids:
                label = self._label_of.pop(id_, None)
                if label is None:
                    continue
                self._index.mark_deleted(label)
                del self._id_of[label]
                self._free_slots += 1
                removed.append(id_)
            self._rows.delete(removed)
        return len(removed)

    def search(
        self, query: F32Array, k: int, allow: Allow | None = None, ef: int | None = None
    ) -> list[tuple[str, float]]:
        """See ``VectorIndex.search``.

        A filter that few ids pass (estimated from a sample: under 2000 ids or 8% of the
        index) is answered by exact search over the allowed rows; so is a filtered graph
        search that comes back short, so ``k`` results always return when ``k`` ids pass.
        An explicit ``ef`` other than the index's own takes the write lock, as hnswlib's
        ``ef`` is shared by all queries.
        """
        q = check_query(query, self.dimension, self.metric)
        if k <= 0:
            return []
        if ef is not None and ef != self._ef_search:
            with self._lock.write():
                self._index.set_ef(ef)
                try:
                    return self._search_locked(q, k, allow)
                finally:
                    self._index.set_ef(self._ef_search)
        with self._lock.read():
            return self._search_locked(q, k, allow)

    def _search_locked(self, q: F32Array, k: int, allow: Allow | None) -> list[tuple[str, float]]:
        live = len(self._id_of)
        if live == 0:
            return []
        wanted = min(k, live)
        if allow is None:
            found = self._knn(q, wanted, None)
            return found if found is not None else self._rows.search(q, k)
        selective = max(SELECTIVE_MAX_IDS, SELECTIVE_MAX_FRACTION * live)
        if self._estimate_passing(allow, live) < selective:
            return self._rows.search_allowed(q, k, allow)
        id_of = self._id_of

        def label_filter(label: int) -> bool:
            id_ = id_of.get(label)
            return id_ is not None and allow(id_)

        found = self._knn(q, wanted, label_filter)
        if found is None or len(found) < wanted:
            return self._rows.search_allowed(q, k, allow)
        return found

    def _knn(
        self, q: F32Array, k: int, label_filter: Callable[[int], bool] | None
    ) -> list[tuple[str, float]] | None:
        """hnswlib's answer, or ``None`` when it cannot find ``k`` results."""
        try:
            # One query: thread start-up in hnswlib costs more than it saves (3.1 vs 1.3 ms).
            labels, distances = self._index.knn_query(q, k=k, num_threads=1, filter=label_filter)
        except RuntimeError as exc:
            if "contiguous" not in str(exc):
                raise
            return None
        out = []
        for label, distance in zip(labels[0].tolist(), distances[0].tolist(), strict=True):
            id_ = self._id_of.get(label)
            if id_ is not None:
                out.append((id_, self._score(distance)))
        return out

    def _score(self, distance: float) -> float:
        # hnswlib answers 1 - dot for "ip" and the squared distance for "l2".
        if self.metric == "euclidean":
            return 0.0 - float(np.sqrt(max(distance, 0.0)))  # 0.0, never -0.0
        return 1.0 - distance

    def _estimate_passing(self, allow: Allow, live: int) -> float:
        """How many live ids ``allow`` lets through, from a random sample of labels."""
        sampled = passed = 0
        for _ in range(8 * FILTER_SAMPLE_SIZE):
            id_ = self._id_of.get(self._rng.randrange(self._next_label))
            if id_ is None:
                continue
            sampled += 1
            passed += bool(allow(id_))
            if sampled == FILTER_SAMPLE_SIZE:
                break
        return passed / sampled * live if sampled else 0.0

    def __len__(self) -> int:
        return len(self._id_of)

    def __contains__(self, id: object) -> bool:
        return id in self._label_of

    def get_vector(self, id: str) -> F32Array | None:
        """See ``VectorIndex.get_vector``."""
        return self._rows.get_vector(id)

    def cosines(self, ids: Sequence[str], query: F32Array) -> dict[str, float]:
        """See ``VectorIndex.cosines``."""
        return self._rows.cosines(ids, query)

    def parts(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        with self._lock.read():
            (state,) = self._index.__getstate__()
            rows_meta, rows_arrays = self._rows.parts()
            labels = [self._label_of[id_] for id_ in rows_meta["ids"]]
            meta: dict[str, Any] = {
                "ef_search": self._ef_search,
                "next_label": self._next_label,
                "free_slots": self._free_slots,
                "rows": rows_meta,
                "hnsw": {k: v for k, v in state.items() if not isinstance(v, np.ndarray)},
            }
            arrays = {f"hnsw.{k}": v for k, v in state.items() if isinstance(v, np.ndarray)}
            arrays.update({f"rows.{k}": v for k, v in rows_arrays.items()})
            arrays["labels"] = np.array(labels, dtype=np.uint64)
            return meta, arrays

    @classmethod
    def from_parts(cls, meta: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> Self:
        rows = ExactIndex.from_parts(
            meta["rows"],
            {k.removeprefix("rows."): v for k, v in arrays.items() if k.startswith("rows.")},
        )
        state = dict(meta["hnsw"])
        if state.get("dim") != rows.dimension or state.get("space") != HNSW_SPACE[rows.metric]:
            raise ValueError("hnsw snapshot does not match its dimension or metric")
        for name, array in arrays.items():
            if name.startswith("hnsw."):
                state[name.removeprefix("hnsw.")] = array.copy()
        labels = [int(x) for x in arrays["labels"].tolist()]
        ids = list(rows._ids)
        if len(labels) != len(ids):
            raise ValueError("hnsw snapshot labels do not match its ids")
        index = cls.__new__(cls)
        index.dimension = rows.dimension
        index.metric = rows.metric
        index._ef_search = int(meta["ef_search"])
        index._index = hnswlib.Index.__new__(hnswlib.Index)
        index._index.__setstate__((state,))
        index._index.set_ef(index._ef_search)  # hnswlib forgets ef on load (resets to 10)
        index._rows = rows
        index._id_of = dict(zip(labels, ids, strict=True))
        index._label_of = dict(zip(ids, labels, strict=True))
        index._next_label = int(meta["next_label"])
        index._free_slots = int(meta["free_slots"])
        index._lock = ReadWriteLock()
        index._rng = random.Random(0x5EED)
        return index
