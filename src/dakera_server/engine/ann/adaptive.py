"""The index the engines use: an exact segment for what is new, an HNSW graph for the rest.

Below ``exact_threshold`` vectors the exact segment is the whole index: exact answers, cheap at
that size, no graph to build. Above it, a graph is created and the background indexer
(``indexer.py``) moves vectors from the exact segment into it, a chunk at a time. Writes always
go to the exact segment (an update first marks the id's graph copy deleted), so a write costs
the same at any size and is searchable as soon as it returns; a search asks both segments and
keeps the best ``k``. Every live id is in exactly one segment: the move of a chunk (insert into
the graph, delete from the exact segment) happens under this index's write lock.
"""

from __future__ import annotations

import heapq
import os
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, Self

import numpy.typing as npt

from dakera_server.engine.ann.base import (
    DEFAULT_EXACT_THRESHOLD,
    Allow,
    F32Array,
    Metric,
    ReadWriteLock,
    check_params,
    pack,
    unpack,
)
from dakera_server.engine.ann.exact import ExactIndex
from dakera_server.engine.ann.hnsw import HnswIndex
from dakera_server.engine.ann.indexer import CHUNK_SECONDS, Indexer, default_indexer

__all__ = ["AdaptiveIndex"]

_MIN_CHUNK = 16
BULK_THREADS = max(1, min(2, os.cpu_count() or 1))
_MAX_CHUNK = 4096


class AdaptiveIndex:
    """Exact search up to ``exact_threshold`` vectors; above it, HNSW fed in the background.

    ``pending`` says how many vectors still wait for the graph; ``wait_indexed`` blocks until
    none do (tests and benchmarks use it to measure the steady state).
    """

    kind = "adaptive"

    def __init__(
        self,
        dimension: int,
        metric: Metric = "cosine",
        *,
        exact_threshold: int = DEFAULT_EXACT_THRESHOLD,
        indexer: Indexer | None = None,
    ) -> None:
        check_params(dimension, metric)
        self.dimension = dimension
        self.metric: Metric = metric
        self._exact_threshold = exact_threshold
        self._fresh = ExactIndex(dimension, metric)
        self._graph: HnswIndex | None = None
        self._lock = ReadWriteLock()
        self._indexer = indexer if indexer is not None else default_indexer()
        self._indexed = threading.Condition()
        self._chunk = 64
        self._step_lock = threading.Lock()  # one move at a time; snapshots wait for it
        self._moving: set[str] = set()  # the chunk being inserted into the graph
        self._dirty: set[str] = set()  # ids of that chunk written since it was taken

    @property
    def exact_threshold(self) -> int:
        """Above this many vectors, the graph takes over."""
        return self._exact_threshold

    @exact_threshold.setter
    def exact_threshold(self, value: int) -> None:
        self._exact_threshold = value
        self._schedule()

    @property
    def backend(self) -> str:
        """``"exact"`` below the threshold, ``"hnsw"`` above it (even while the background
        indexer is still feeding the graph: ``pending`` tells how far it is)."""
        return "hnsw" if self._graph is not None or self.pending else "exact"

    @property
    def pending(self) -> int:
        """Vectors waiting for the background indexer to move them into the graph."""
        fresh = len(self._fresh)
        if self._graph is None and fresh <= self._exact_threshold:
            return 0
        return fresh

    def wait_indexed(self, timeout: float | None = None) -> bool:
        """Block until ``pending`` is 0; returns False if ``timeout`` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._indexed:
            while self.pending:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._indexed.wait(0.1 if left is None else min(0.1, left))
        return True

    # ----------------------------------------------------------------- writes
    def upsert(self, ids: Sequence[str], vectors: F32Array) -> None:
        """See ``VectorIndex.upsert``: into the exact segment, the graph's old copies deleted."""
        with self._lock.write():
            self._fresh.upsert(ids, vectors)  # validates; nothing changes if it raises
            self._retire_graph_copies(ids)
        self._schedule()

    def delete(self, ids: Iterable[str]) -> int:
        """See ``VectorIndex.delete``."""
        id_list = list(ids)
        with self._lock.write():
            removed = self._fresh.delete(id_list)  # counts moving ids: they are still here
            return removed + self._retire_graph_copies(id_list)

    def _retire_graph_copies(self, ids: Iterable[str]) -> int:
        """After a write to ``ids``: their graph copies are outdated. Ids of the chunk being
        moved are only marked (the move settles them); others are deleted from the graph now
        (which waits for a chunk insertion in progress: updates of indexed ids are rare next
        to new ids, which never wait). Returns how many graph copies were deleted."""
        graph = self._graph
        if graph is None:
            return 0
        moving = self._moving
        if moving:
            self._dirty.update(i for i in ids if i in moving)
        indexed = [i for i in ids if i not in moving and i in graph]
        return graph.delete(indexed) if indexed else 0

    def _schedule(self) -> None:
        if self.pending:
            self._indexer.submit(self)

    def index_step(self) -> bool:
        """Move one chunk from the exact segment into the graph (the indexer's job).

        The chunk is inserted into the graph *without* this index's write lock, so writes of
        new ids never wait for it; meanwhile the chunk's ids are in both segments (searches
        keep one copy) and writes to them are recorded in ``_dirty``. The move then settles
        under the write lock: a clean id leaves the exact segment, a dirty one leaves the
        graph. The chunk size adapts to about ``CHUNK_SECONDS`` of insertion, which is how
        long a search may wait for the graph. Returns whether vectors still wait.
        """
        with self._step_lock:
            with self._lock.write():
                if not self.pending:
                    more = False
                    ids: list[str] = []
                else:
                    if self._graph is None:
                        self._graph = HnswIndex(
                            self.dimension, self.metric, capacity=max(1024, 2 * len(self._fresh))
                        )
                    # A long backlog (a bulk load, a start without snapshot) is inserted on
                    # every core: 8,300 -> 17,500 vectors/s at 40k x 384 when the machine is
                    # idle. A short one, the steady state of live writes, uses one thread and
                    # leaves the other core to the requests.
                    threads = BULK_THREADS if self.pending > 8 * self._chunk else 1
                    ids, vectors = self._fresh.tail(self._chunk * threads)
                    self._moving, self._dirty = set(ids), set()
                graph = self._graph
            if ids:
                assert graph is not None
                started = time.perf_counter()
                graph.upsert(ids, vectors, threads=threads)
                elapsed = max(time.perf_counter() - started, 1e-6)
                with self._lock.write():
                    dirty = self._dirty
                    stale = [i for i in ids if i in dirty]
                    if stale:
                        graph.delete(stale)
                    self._fresh.delete([i for i in ids if i not in dirty])
                    self._moving, self._dirty = set(), set()
                    more = bool(self.pending)
                rate = len(ids) / elapsed / threads
                self._chunk = int(min(_MAX_CHUNK, max(_MIN_CHUNK, rate * CHUNK_SECONDS)))
        if not more:
            with self._indexed:
                self._indexed.notify_all()
        return more

    # ----------------------------------------------------------------- reads
    def search(
        self, query: F32Array, k: int, allow: Allow | None = None, ef: int | None = None
    ) -> list[tuple[str, float]]:
        """See ``VectorIndex.search``: the best ``k`` of both segments' top ``k``.

        During a move the graph may also hold ids of the exact segment (the same vector: one
        copy is kept) and stale copies of ids written meanwhile (``_dirty``: skipped, and asked
        for on top of ``k`` so that ``k`` results still come back).
        """
        with self._lock.read():
            found = self._fresh.search(query, k, allow)
            graph = self._graph
            if graph is None or not len(graph):
                return found
            dirty = self._dirty
            from_graph = graph.search(query, k + len(dirty), allow, ef)
            if self._moving:
                skip = dirty.union(id_ for id_, _ in found)
                from_graph = [hit for hit in from_graph if hit[0] not in skip]
        if not found:
            return from_graph[:k]
        return heapq.nlargest(k, [*found, *from_graph], key=lambda hit: hit[1])

    def __len__(self) -> int:
        with self._lock.read():
            graph = self._graph
            if graph is None:
                return len(self._fresh)
            doubled = sum(
                1 for i in self._moving if i in graph and (i in self._fresh or i in self._dirty)
            )
            return len(self._fresh) + len(graph) - doubled

    def __contains__(self, id: object) -> bool:
        with self._lock.read():
            if id in self._fresh:
                return True
            return self._graph is not None and id in self._graph and id not in self._dirty

    def get_vector(self, id: str) -> F32Array | None:
        """See ``VectorIndex.get_vector``."""
        with self._lock.read():
            vector = self._fresh.get_vector(id)
            if vector is None and self._graph is not None and id not in self._dirty:
                vector = self._graph.get_vector(id)
            return vector

    def cosines(self, ids: Sequence[str], query: F32Array) -> dict[str, float]:
        """See ``VectorIndex.cosines``: the exact segment's copy first, as ``get_vector``."""
        with self._lock.read():
            found = self._fresh.cosines(ids, query)
            graph = self._graph
            if graph is not None and len(found) < len(ids):
                rest = [i for i in ids if i not in found and i not in self._dirty]
                found.update(graph.cosines(rest, query))
            return found

    # ----------------------------------------------------------------- snapshots
    def to_bytes(self) -> bytes:
        """See ``VectorIndex.to_bytes``: both segments, so pending vectors are not lost (taken
        between two moves, never with a chunk in both segments)."""
        with self._step_lock, self._lock.read():
            fresh_meta, fresh_arrays = self._fresh.parts()
            meta: dict[str, Any] = {"exact_threshold": self._exact_threshold, "fresh": fresh_meta}
            arrays: dict[str, npt.NDArray[Any]] = {f"fresh.{k}": v for k, v in fresh_arrays.items()}
            if self._graph is not None:
                graph_meta, graph_arrays = self._graph.parts()
                meta["graph"] = graph_meta
                arrays.update({f"graph.{k}": v for k, v in graph_arrays.items()})
        return pack(self.kind, meta, arrays)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """See ``VectorIndex.from_bytes``; also accepts a bare exact or HNSW snapshot."""
        kind, meta, arrays = unpack(data)
        threshold = DEFAULT_EXACT_THRESHOLD
        fresh: ExactIndex | None = None
        graph: HnswIndex | None = None
        if kind == cls.kind:
            threshold = int(meta["exact_threshold"])
            fresh = ExactIndex.from_parts(meta["fresh"], _prefixed(arrays, "fresh."))
            if "graph" in meta:
                graph = HnswIndex.from_parts(meta["graph"], _prefixed(arrays, "graph."))
        elif kind == ExactIndex.kind:
            fresh = ExactIndex.from_parts(meta, arrays)
        elif kind == HnswIndex.kind:
            graph = HnswIndex.from_parts(meta, arrays)
        else:
            raise ValueError(f"unknown vector index kind {kind!r} in snapshot")
        shape = graph if graph is not None else fresh
        assert shape is not None
        index = cls(shape.dimension, shape.metric, exact_threshold=threshold)
        if fresh is not None:
            if fresh.dimension != index.dimension or fresh.metric != index.metric:
                raise ValueError("snapshot segments disagree on dimension or metric")
            index._fresh = fresh
        index._graph = graph
        index._schedule()
        return index


def _prefixed(arrays: dict[str, npt.NDArray[Any]], prefix: str) -> dict[str, npt.NDArray[Any]]:
    return {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}
