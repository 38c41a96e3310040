"""Nearest-neighbour vector indexes: one small interface, an exact and an HNSW implementation.

``VectorIndex`` is the contract the memory and vector engines program against (STYLE habit 9);
``create_index`` returns an ``AdaptiveIndex``: exact numpy search while the index is small (it is
exact, cheap below ~10k vectors and needs no graph), switching once to hnswlib above the threshold.

Scores are always "higher = more similar": cosine similarity, the dot product, or the *negated*
L2 distance for euclidean, so callers can sort and fuse them without knowing the metric.

hnswlib traps handled here (ARCHITECTURE "Known traps"): ``ef`` resets to 10 after a load, so it
is set after every restore; a query asking for more results than it can find raises "Cannot
return the results in a contiguous 2D array", so queries ask for ``min(k, live)`` and never run
concurrently with a mutation (readers-writer lock); deletes use ``mark_deleted`` and their slots
are reused by later inserts (``allow_replace_deleted``).

Snapshots (``to_bytes``) are a JSON header plus raw little-endian arrays, never pickle, so a
snapshot cannot execute code when loaded. The caller encrypts them when encryption is on.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, Protocol, Self, runtime_checkable

import hnswlib
import numpy as np
import numpy.typing as npt

from dakera_server.errors import DimensionMismatch, InvalidInput

__all__ = [
    "DEFAULT_EXACT_THRESHOLD",
    "AdaptiveIndex",
    "ExactIndex",
    "HnswIndex",
    "Metric",
    "VectorIndex",
    "create_index",
]

Metric = Literal["cosine", "euclidean", "dot_product"]
Allow = Callable[[str], bool]
F32Array = npt.NDArray[np.float32]

METRICS: tuple[Metric, ...] = ("cosine", "euclidean", "dot_product")
DEFAULT_EXACT_THRESHOLD = 10_000
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 64
# A filter letting fewer ids through than this (estimated by sampling) is served by exact search
# over the allowed vectors: HNSW with a selective filter walks most of the graph and can come
# back with fewer than k results. Measured at 100k x 384 (bench/indexes.py): the exact path
# costs ~12 ms whatever the fraction (one predicate call per id), hnswlib's filter 30 ms at 5%
# and 7 ms at 10%, so the switch sits at 8%.
SELECTIVE_MAX_IDS = 2000
SELECTIVE_MAX_FRACTION = 0.08
FILTER_SAMPLE_SIZE = 256

_SNAPSHOT_MAGIC = b"DKVIDX1\n"
_SNAPSHOT_DTYPES = frozenset({"<f4", "<u8", "<u4", "<i4", "|i1", "|u1"})
_HNSW_SPACE: dict[Metric, str] = {"cosine": "ip", "dot_product": "ip", "euclidean": "l2"}


@runtime_checkable
class VectorIndex(Protocol):
    """An in-memory k-NN index over ``(id, vector)`` pairs of one dimension and one metric.

    Implementations are thread-safe: the server calls them from a thread pool, searches may run
    while another thread upserts. Ids are opaque strings; vectors are float32 rows.
    """

    dimension: int
    metric: Metric

    def upsert(self, ids: Sequence[str], vectors: F32Array) -> None:
        """Insert or replace ``vectors[i]`` under ``ids[i]``; ``vectors`` has shape ``(n, dim)``.

        A repeated id in one batch keeps its last vector. Raises ``DimensionMismatch`` for a
        wrong width and ``InvalidInput`` for non-finite values; nothing is written then.
        """
        ...

    def delete(self, ids: Iterable[str]) -> int:
        """Remove these ids; returns how many existed (unknown ids are ignored)."""
        ...

    def search(
        self, query: F32Array, k: int, allow: Allow | None = None, ef: int | None = None
    ) -> list[tuple[str, float]]:
        """The ``k`` most similar ids, best first, as ``(id, score)``; higher score = closer.

        ``allow`` filters *before* the top-k cut: whenever at least ``k`` ids pass it, exactly
        ``k`` results come back. It must not mutate this index. ``ef`` overrides the HNSW
        search breadth (default ``max(64, k)``); exact indexes ignore it.
        """
        ...

    def __len__(self) -> int:
        """Number of live ids."""
        ...

    def __contains__(self, id: object) -> bool:
        """Whether ``id`` is live."""
        ...

    def get_vector(self, id: str) -> F32Array | None:
        """The vector stored under ``id`` as it was given (float32 rounding), or ``None``."""
        ...

    def to_bytes(self) -> bytes:
        """A self-contained snapshot; ``from_bytes`` of it answers every search identically."""
        ...

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Rebuild an index from ``to_bytes`` output; ``ValueError`` if it is not one.

        Headers are checked, but hnswlib does not validate its arrays: load only snapshots
        this server wrote (the caller authenticates them when encryption is on).
        """
        ...


def create_index(
    dimension: int, metric: Metric, *, exact_threshold: int = DEFAULT_EXACT_THRESHOLD
) -> VectorIndex:
    """The index the engine uses: exact below ``exact_threshold`` vectors, HNSW above it."""
    return AdaptiveIndex(dimension, metric, exact_threshold=exact_threshold)


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer blocks new readers so it cannot starve.

    Re-entrant for the thread that holds it (read inside read, read or write inside write).
    Upgrading a read to a write would deadlock two upgraders, so it raises instead.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer: int | None = None
        self._writer_depth = 0
        self._writers_waiting = 0
        self._local = threading.local()

    @contextmanager
    def read(self) -> Iterator[None]:
        depth: int = getattr(self._local, "depth", 0)
        if depth or self._writer == threading.get_ident():
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth = depth
            return
        with self._cond:
            while self._writer is not None or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        self._local.depth = 1
        try:
            yield
        finally:
            self._local.depth = 0
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        me = threading.get_ident()
        if self._writer == me:
            self._writer_depth += 1
            try:
                yield
            finally:
                self._writer_depth -= 1
            return
        if getattr(self._local, "depth", 0):
            raise RuntimeError("a vector index read lock cannot be upgraded to a write lock")
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer is not None or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = me
        try:
            yield
        finally:
            with self._cond:
                self._writer = None
                self._cond.notify_all()


# --- validation and maths shared by the implementations -------------------------------------


def _check_params(dimension: int, metric: str) -> None:
    if dimension < 1:
        raise ValueError(f"dimension must be >= 1, got {dimension}")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")


def _check_batch(
    ids: Sequence[str], vectors: F32Array, dimension: int
) -> tuple[list[str], F32Array]:
    """Validated float32 copy of the batch, a repeated id keeping its last row."""
    id_list = list(ids)
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1 and len(id_list) == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.shape[0] != len(id_list):
        raise ValueError(f"expected {len(id_list)} vectors, got an array of shape {array.shape}")
    if array.shape[1] != dimension:
        raise DimensionMismatch(
            f"vector dimension {array.shape[1]} does not match the index dimension {dimension}"
        )
    if not np.isfinite(array).all():
        raise InvalidInput("vector values must be finite numbers")
    last = {id_: row for row, id_ in enumerate(id_list)}
    if len(last) != len(id_list):
        keep = sorted(last.values())
        return [id_list[row] for row in keep], array[keep].copy()
    return id_list, array.copy()


def _check_query(query: F32Array, dimension: int) -> F32Array:
    array = np.asarray(query, dtype=np.float32).reshape(-1)
    if array.shape[0] != dimension:
        raise DimensionMismatch(
            f"query dimension {array.shape[0]} does not match the index dimension {dimension}"
        )
    if not np.isfinite(array).all():
        raise InvalidInput("query values must be finite numbers")
    return array


def _unit_rows(vectors: F32Array) -> tuple[F32Array, F32Array]:
    """Rows scaled to unit length (zero rows stay zero) and the original norms."""
    norms = np.linalg.norm(vectors, axis=1).astype(np.float32)
    safe = np.where(norms > 0, norms, np.float32(1.0))
    return (vectors / safe[:, None]).astype(np.float32), norms


def _exact_scores(metric: Metric, stored: F32Array, norms: F32Array, query: F32Array) -> F32Array:
    """Scores of ``query`` (already unit length for cosine) against stored rows."""
    dots = stored @ query
    if metric != "euclidean":
        return dots
    squared = norms.astype(np.float32) ** 2 - 2 * dots + np.float32(query @ query)
    return np.float32(0.0) - np.sqrt(np.maximum(squared, 0, dtype=np.float32))  # no -0.0


def _top_k(
    scores: F32Array, ids: Sequence[str], k: int, allow: Allow | None
) -> list[tuple[str, float]]:
    """Best-first top ``k`` of ``scores``; with ``allow``, candidates are examined best first
    until ``k`` pass, so the predicate runs on few rows when the filter is permissive."""
    n = int(scores.shape[0])
    if n == 0 or k <= 0:
        return []
    if allow is None:
        m = min(k, n)
        top = np.argpartition(-scores, m - 1)[:m] if m < n else np.arange(n)
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(ids[i], float(scores[i])) for i in top]
    out: list[tuple[str, float]] = []
    window = min(n, max(4 * k, 64))
    first = np.argpartition(-scores, window - 1)[:window] if window < n else np.arange(n)
    first = first[np.argsort(-scores[first], kind="stable")]
    for i in first:
        if allow(ids[i]):
            out.append((ids[i], float(scores[i])))
            if len(out) == k:
                return out
    if window == n:
        return out
    seen = set(first.tolist())
    for i in np.argsort(-scores, kind="stable"):
        if int(i) not in seen and allow(ids[i]):
            out.append((ids[i], float(scores[i])))
            if len(out) == k:
                break
    return out


# --- snapshot container: JSON header + raw arrays (no pickle) --------------------------------


def _pack(kind: str, meta: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> bytes:
    layout = []
    blobs: list[bytes | memoryview] = []
    offset = 0
    for name, array in arrays.items():
        contiguous = np.ascontiguousarray(array)
        dtype = contiguous.dtype.newbyteorder("<") if contiguous.dtype.byteorder == ">" else None
        if dtype is not None:
            contiguous = contiguous.astype(dtype)
        layout.append(
            {
                "name": name,
                "dtype": contiguous.dtype.str,
                "shape": list(contiguous.shape),
                "offset": offset,
                "nbytes": contiguous.nbytes,
            }
        )
        blobs.append(contiguous.reshape(-1).view(np.uint8).data)
        offset += contiguous.nbytes
    header = json.dumps({"kind": kind, "meta": meta, "arrays": layout}).encode()
    return b"".join([_SNAPSHOT_MAGIC, len(header).to_bytes(8, "little"), header, *blobs])


def _unpack(data: bytes) -> tuple[str, dict[str, Any], dict[str, npt.NDArray[Any]]]:
    """Parse a snapshot. Arrays are read-only views into ``data``; copy before mutating."""
    if not data.startswith(_SNAPSHOT_MAGIC):
        raise ValueError("not a dakera vector index snapshot")
    start = len(_SNAPSHOT_MAGIC)
    size = int.from_bytes(data[start : start + 8], "little")
    try:
        header = json.loads(data[start + 8 : start + 8 + size])
        base = start + 8 + size
        arrays: dict[str, npt.NDArray[Any]] = {}
        for entry in header["arrays"]:
            if entry["dtype"] not in _SNAPSHOT_DTYPES:
                raise ValueError(f"unsupported array dtype {entry['dtype']!r} in snapshot")
            dtype = np.dtype(entry["dtype"])
            shape = tuple(int(x) for x in entry["shape"])
            if base + entry["offset"] + entry["nbytes"] > len(data):
                raise ValueError("truncated vector index snapshot")
            flat = np.frombuffer(
                data, dtype=dtype, count=int(np.prod(shape)), offset=base + entry["offset"]
            )
            arrays[entry["name"]] = flat.reshape(shape)
        return str(header["kind"]), dict(header["meta"]), arrays
    except (KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("corrupt vector index snapshot header") from exc


# --- exact -----------------------------------------------------------------------------------


class ExactIndex:
    """Brute-force search over a growing float32 matrix: exact results, O(n·dim) per query.

    Rows live in a matrix whose capacity doubles; an id↔row map finds them and a delete moves
    the last row into the hole (swap-remove), so the live rows stay contiguous for one matmul.
    Cosine rows are stored unit length with their original norm beside them.
    """

    kind = "exact"

    def __init__(self, dimension: int, metric: Metric = "cosine", *, capacity: int = 64) -> None:
        _check_params(dimension, metric)
        self.dimension = dimension
        self.metric: Metric = metric
        self._matrix: F32Array = np.zeros((max(1, capacity), dimension), dtype=np.float32)
        self._norms: F32Array = np.zeros(max(1, capacity), dtype=np.float32)
        self._ids: list[str] = []
        self._rows: dict[str, int] = {}
        self._lock = _ReadWriteLock()

    def upsert(self, ids: Sequence[str], vectors: F32Array) -> None:
        """See ``VectorIndex.upsert``."""
        batch_ids, batch = _check_batch(ids, vectors, self.dimension)
        if not batch_ids:
            return
        if self.metric == "cosine":
            stored, norms = _unit_rows(batch)
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
        q = _check_query(query, self.dimension)
        if self.metric == "cosine":
            q = _unit_rows(q.reshape(1, -1))[0][0]
        if k <= 0:
            return []
        with self._lock.read():
            n = len(self._ids)
            scores = _exact_scores(self.metric, self._matrix[:n], self._norms[:n], q)
            if allow is None:
                return _top_k(scores, self._ids, k, None)
            ids = list(self._ids)
        # The predicate runs outside the lock: it may be slow and must not stall writers.
        return _top_k(scores, ids, k, allow)

    def search_allowed(self, query: F32Array, k: int, allow: Allow) -> list[tuple[str, float]]:
        """Exact top ``k`` among the ids ``allow`` passes, scoring only those rows.

        The cheap path for a selective filter: one predicate call per id, then a matmul over
        the few allowed rows. ``allow`` runs under the read lock (writers wait for the scan).
        """
        q = _check_query(query, self.dimension)
        if self.metric == "cosine":
            q = _unit_rows(q.reshape(1, -1))[0][0]
        if k <= 0:
            return []
        with self._lock.read():
            rows = [row for row, id_ in enumerate(self._ids) if allow(id_)]
            if not rows:
                return []
            scores = _exact_scores(self.metric, self._matrix[rows], self._norms[rows], q)
            return _top_k(scores, [self._ids[row] for row in rows], k, None)

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

    def export(self) -> tuple[list[str], F32Array]:
        """All live ids and their vectors as given (used to build an HNSW index from this one)."""
        with self._lock.read():
            n = len(self._ids)
            vectors = self._matrix[:n].copy()
            if self.metric == "cosine":
                vectors *= self._norms[:n, None]
            return list(self._ids), vectors

    def _parts(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        with self._lock.read():
            n = len(self._ids)
            meta = {"dimension": self.dimension, "metric": self.metric, "ids": list(self._ids)}
            return meta, {"vectors": self._matrix[:n].copy(), "norms": self._norms[:n].copy()}

    @classmethod
    def _from_parts(cls, meta: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> Self:
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

    def to_bytes(self) -> bytes:
        """See ``VectorIndex.to_bytes``."""
        return _pack(self.kind, *self._parts())

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """See ``VectorIndex.from_bytes``."""
        kind, meta, arrays = _unpack(data)
        if kind != cls.kind:
            raise ValueError(f"snapshot holds a {kind!r} index, not {cls.kind!r}")
        return cls._from_parts(meta, arrays)


# --- HNSW ------------------------------------------------------------------------------------


class HnswIndex:
    """Approximate search with hnswlib (M=16, ef_construction=200, ef_search >= 64).

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
        _check_params(dimension, metric)
        self.dimension = dimension
        self.metric: Metric = metric
        self._ef_search = ef_search
        self._index = hnswlib.Index(space=_HNSW_SPACE[metric], dim=dimension)
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
        self._lock = _ReadWriteLock()
        self._rng = random.Random(0x5EED)

    def upsert(self, ids: Sequence[str], vectors: F32Array) -> None:
        """See ``VectorIndex.upsert``."""
        batch_ids, batch = _check_batch(ids, vectors, self.dimension)
        if not batch_ids:
            return
        graph_rows = _unit_rows(batch)[0] if self.metric == "cosine" else batch
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
            self._index.add_items(graph_rows, labels, replace_deleted=True)
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
        q = _check_query(query, self.dimension)
        if self.metric == "cosine":
            q = _unit_rows(q.reshape(1, -1))[0][0]
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

    def _parts(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        with self._lock.read():
            (state,) = self._index.__getstate__()
            rows_meta, rows_arrays = self._rows._parts()
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
    def _from_parts(cls, meta: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> Self:
        rows = ExactIndex._from_parts(
            meta["rows"],
            {k.removeprefix("rows."): v for k, v in arrays.items() if k.startswith("rows.")},
        )
        state = dict(meta["hnsw"])
        if state.get("dim") != rows.dimension or state.get("space") != _HNSW_SPACE[rows.metric]:
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
        index._lock = _ReadWriteLock()
        index._rng = random.Random(0x5EED)
        return index

    def to_bytes(self) -> bytes:
        """See ``VectorIndex.to_bytes``."""
        return _pack(self.kind, *self._parts())

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """See ``VectorIndex.from_bytes``."""
        kind, meta, arrays = _unpack(data)
        if kind != cls.kind:
            raise ValueError(f"snapshot holds a {kind!r} index, not {cls.kind!r}")
        return cls._from_parts(meta, arrays)


# --- adaptive --------------------------------------------------------------------------------


class AdaptiveIndex:
    """Exact search up to ``exact_threshold`` vectors, then HNSW for good (no switching back).

    The HNSW graph is built by the upsert that crosses the threshold *without* holding the
    index: searches and writes keep going to the exact index meanwhile, writes are recorded and
    replayed into the graph, and the swap is one assignment. Only that one call waits for the
    build (1.7 s for 10k x 384 on the project's two cores).
    """

    kind = "adaptive"

    def __init__(
        self,
        dimension: int,
        metric: Metric = "cosine",
        *,
        exact_threshold: int = DEFAULT_EXACT_THRESHOLD,
    ) -> None:
        _check_params(dimension, metric)
        self.dimension = dimension
        self.metric: Metric = metric
        self.exact_threshold = exact_threshold
        self._inner: ExactIndex | HnswIndex = ExactIndex(dimension, metric)
        self._write_lock = threading.RLock()
        self._building = False
        self._replay: list[tuple[list[str], F32Array | None]] = []

    @property
    def backend(self) -> str:
        """``"exact"`` or ``"hnsw"``: which implementation currently answers."""
        return self._inner.kind

    def upsert(self, ids: Sequence[str], vectors: F32Array) -> None:
        """See ``VectorIndex.upsert``; may build the HNSW graph (see the class docstring)."""
        batch_ids, batch = _check_batch(ids, vectors, self.dimension)
        snapshot: tuple[list[str], F32Array] | None = None
        with self._write_lock:
            inner = self._inner
            inner.upsert(batch_ids, batch)
            if self._building:
                self._replay.append((batch_ids, batch))
            elif isinstance(inner, ExactIndex) and len(inner) > self.exact_threshold:
                self._building = True
                snapshot = inner.export()
        if snapshot is not None:
            self._switch_to_hnsw(*snapshot)

    def _switch_to_hnsw(self, ids: list[str], vectors: F32Array) -> None:
        try:
            graph = HnswIndex(self.dimension, self.metric, capacity=2 * len(ids))
            graph.upsert(ids, vectors)
            with self._write_lock:
                for replay_ids, replay_vectors in self._replay:
                    if replay_vectors is None:
                        graph.delete(replay_ids)
                    else:
                        graph.upsert(replay_ids, replay_vectors)
                self._inner = graph
        finally:
            with self._write_lock:
                self._building = False
                self._replay.clear()

    def delete(self, ids: Iterable[str]) -> int:
        """See ``VectorIndex.delete``."""
        id_list = list(ids)
        with self._write_lock:
            removed = self._inner.delete(id_list)
            if self._building:
                self._replay.append((id_list, None))
            return removed

    def search(
        self, query: F32Array, k: int, allow: Allow | None = None, ef: int | None = None
    ) -> list[tuple[str, float]]:
        """See ``VectorIndex.search``."""
        return self._inner.search(query, k, allow, ef)

    def __len__(self) -> int:
        return len(self._inner)

    def __contains__(self, id: object) -> bool:
        return id in self._inner

    def get_vector(self, id: str) -> F32Array | None:
        """See ``VectorIndex.get_vector``."""
        return self._inner.get_vector(id)

    def to_bytes(self) -> bytes:
        """See ``VectorIndex.to_bytes``; records the threshold and the current backend."""
        with self._write_lock:
            inner = self._inner
            meta, arrays = inner._parts()
        return _pack(
            self.kind,
            {"exact_threshold": self.exact_threshold, "inner": inner.kind, "inner_meta": meta},
            arrays,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """See ``VectorIndex.from_bytes``; also accepts a bare exact or HNSW snapshot."""
        kind, meta, arrays = _unpack(data)
        threshold = DEFAULT_EXACT_THRESHOLD
        if kind == cls.kind:
            threshold = int(meta["exact_threshold"])
            kind, meta = meta["inner"], meta["inner_meta"]
        inner: ExactIndex | HnswIndex
        if kind == ExactIndex.kind:
            inner = ExactIndex._from_parts(meta, arrays)
        elif kind == HnswIndex.kind:
            inner = HnswIndex._from_parts(meta, arrays)
        else:
            raise ValueError(f"unknown vector index kind {kind!r} in snapshot")
        index = cls(inner.dimension, inner.metric, exact_threshold=threshold)
        index._inner = inner
        return index
