"""What every vector index shares: the ``VectorIndex`` contract, the metrics, a readers-writer
lock, input checks, the exact scoring maths and the snapshot container.

Scores are always "higher = more similar": cosine similarity, the dot product, or the *negated*
L2 distance for euclidean, so callers can sort and fuse them without knowing the metric.

Snapshots (``to_bytes``) are a JSON header plus raw little-endian arrays, never pickle, so a
snapshot cannot execute code when loaded. The caller encrypts them when encryption is on.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt

from dakera_server.errors import DimensionMismatch, InvalidInput

Metric = Literal["cosine", "euclidean", "dot_product"]
Allow = Callable[[str], bool]
F32Array = npt.NDArray[np.float32]

METRICS: tuple[Metric, ...] = ("cosine", "euclidean", "dot_product")
DEFAULT_EXACT_THRESHOLD = 10_000
# Chosen by measurement (100k MiniLM vectors of generated text, 1,000 held-out queries,
# recall@10 against exact search, one core): ef_construction 200 built the graph in 32.9 s
# (recall 0.9987 at ef 64), 100 in 17.2 s (0.9939 at ef 64) - half the build cost, so the
# background indexer keeps up with ~6,000 upserts/s. The lost recall is won back at query time:
# vectors arriving in their (topic-correlated) generation order, 1,000 every 0.15 s as the
# bench's client sends them, gave recall 0.9966 / 0.9975 / 0.9985 at ef 100 / 128 / 200
# (0.9994 at any ef when the arrival order is shuffled); 0.20 / 0.22 / 0.31 ms per query
# (ef 160: 0.26 ms).
# Chroma 1.5.9 (M 16, ef 100/100) measured 0.995-0.998 in the same bench runs.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 100
HNSW_EF_SEARCH = 160
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
HNSW_SPACE: dict[Metric, str] = {"cosine": "ip", "dot_product": "ip", "euclidean": "l2"}


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
        search breadth (default ``max(HNSW_EF_SEARCH, k)``); exact indexes ignore it.
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

    def cosines(self, ids: Sequence[str], query: F32Array) -> dict[str, float]:
        """Cosine similarity of ``query`` with the vector stored under each of ``ids`` (ids not
        stored are left out), whatever the index's metric: one lock and one matrix product
        for the lot, where ``get_vector`` per id costs a lock, a copy and a norm each (recall
        asks this for the ~60 keyword-only candidates of every query)."""
        ...

    def to_bytes(self) -> bytes:
        """A self-contained snapshot; ``from_bytes`` of it answers every search identically
        (for an ``AdaptiveIndex``, once both copies have indexed what was pending)."""
        ...

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Rebuild an index from ``to_bytes`` output; ``ValueError`` if it is not one.

        Headers are checked, but hnswlib does not validate its arrays: load only snapshots
        this server wrote (the caller authenticates them when encryption is on).
        """
        ...


class ReadWriteLock:
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


def check_params(dimension: int, metric: str) -> None:
    if dimension < 1:
        raise ValueError(f"dimension must be >= 1, got {dimension}")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")


def check_batch(
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


def check_query(query: F32Array, dimension: int, metric: Metric) -> F32Array:
    """The query as a float32 row, checked, and unit length for cosine (what scoring expects)."""
    array = np.asarray(query, dtype=np.float32).reshape(-1)
    if array.shape[0] != dimension:
        raise DimensionMismatch(
            f"query dimension {array.shape[0]} does not match the index dimension {dimension}"
        )
    if not np.isfinite(array).all():
        raise InvalidInput("query values must be finite numbers")
    if metric == "cosine":
        unit: F32Array = unit_rows(array.reshape(1, -1))[0][0]
        return unit
    return array


def unit_rows(vectors: F32Array) -> tuple[F32Array, F32Array]:
    """Rows scaled to unit length (zero rows stay zero) and the original norms."""
    norms = np.linalg.norm(vectors, axis=1).astype(np.float32)
    safe = np.where(norms > 0, norms, np.float32(1.0))
    return (vectors / safe[:, None]).astype(np.float32), norms


def exact_scores(metric: Metric, stored: F32Array, norms: F32Array, query: F32Array) -> F32Array:
    """Scores of ``query`` (already unit length for cosine) against stored rows."""
    dots = stored @ query
    if metric != "euclidean":
        return dots
    squared = norms.astype(np.float32) ** 2 - 2 * dots + np.float32(query @ query)
    return np.float32(0.0) - np.sqrt(np.maximum(squared, 0, dtype=np.float32))  # no -0.0


def top_k(
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


def pack(kind: str, meta: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> bytes:
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


def unpack(data: bytes) -> tuple[str, dict[str, Any], dict[str, npt.NDArray[Any]]]:
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


class PartsSnapshot:
    """``to_bytes``/``from_bytes`` for an index class that can give its state as
    ``parts()`` (a JSON-able header and arrays) and be rebuilt by ``from_parts``; the snapshot
    names the class's ``kind`` so one kind is never loaded as another."""

    kind: str

    def parts(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        """The index's state: a JSON-able header and its arrays (copies)."""
        raise NotImplementedError

    @classmethod
    def from_parts(cls, meta: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> Self:
        """The index ``parts`` described; ``ValueError`` when they do not fit together."""
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """See ``VectorIndex.to_bytes``."""
        return pack(self.kind, *self.parts())

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """See ``VectorIndex.from_bytes``."""
        kind, meta, arrays = unpack(data)
        if kind != cls.kind:
            raise ValueError(f"snapshot holds a {kind!r} index, not {cls.kind!r}")
        return cls.from_parts(meta, arrays)
