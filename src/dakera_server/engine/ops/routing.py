"""Semantic routing (``POST /v1/route``): which namespaces a query belongs to.

Each namespace is summarised by its centroid — the normalised mean of its unit-length vectors —
and the query, embedded with the server's model, is compared with every centroid the caller may
see by cosine similarity. Namespaces whose dimension is smaller than the model's cannot hold
its embeddings and are skipped; wider ones are compared on the model's dimensions (text written
through the server is zero-padded, which leaves cosines unchanged).

Centroids are cached: a data namespace's until its revision moves, an agent's until its memory
count changes or ``AGENT_CENTROID_SECONDS`` pass (agents have no revision counter).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from dakera_server.engine.access import Caller, agent_namespace
from dakera_server.engine.lifecycle.state import SYSTEM
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.rules import check_importance
from dakera_server.engine.vectors.engine import NamespaceEngine
from dakera_server.engine.vectors.writes import check_model
from dakera_server.errors import InvalidInput

__all__ = ["Router"]

AGENT_CENTROID_SECONDS = 30.0
MAX_QUERY_CHARS = 10_000
F32 = npt.NDArray[np.float32]


def _centroid(rows: list[F32], width: int) -> F32 | None:
    if not rows:
        return None
    matrix = np.stack([r[:width] for r in rows]).astype(np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    units = matrix / np.where(norms == 0, 1.0, norms)
    mean = units.mean(axis=0)
    length = float(np.linalg.norm(mean))
    return None if length == 0 else (mean / length).astype(np.float32)


class Router:
    """Centroid similarity between a query and the namespaces a caller may see."""

    def __init__(
        self,
        memories: MemoryEngine,
        namespaces: NamespaceEngine,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.memories = memories
        self.namespaces = namespaces
        self.clock = clock
        self._cache: dict[str, tuple[Any, F32 | None]] = {}
        self._lock = threading.Lock()

    def _cached(self, name: str, key: Any, compute: Callable[[], F32 | None]) -> F32 | None:
        with self._lock:
            hit = self._cache.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        value = compute()
        with self._lock:
            self._cache[name] = (key, value)
        return value

    def _data_centroid(self, name: str, width: int) -> tuple[F32 | None, int]:
        namespace = self.namespaces.held(name)
        if namespace is None or namespace.index is None:
            return None, 0
        dimension = namespace.info.dimension or 0
        if dimension < width:
            return None, 0
        index = namespace.index

        def compute() -> F32 | None:
            with namespace.lock:
                ids = [r.id for r in namespace.records.values() if r.has_vector]
                rows = [v for i in ids if (v := index.get_vector(i)) is not None]
            return _centroid(rows, width)

        key = (namespace.info.uid, namespace.info.revision, width)
        return self._cached(name, key, compute), namespace.vector_count()

    def _agent_centroid(self, agent_id: str, width: int) -> tuple[F32 | None, int]:
        agent = self.memories.agent(SYSTEM, agent_id)
        if agent is None:
            return None, 0
        count = len(agent)

        def compute() -> F32 | None:
            with agent.lock:
                rows = [
                    v
                    for i in list(agent.memories)
                    if (v := agent.vectors.get_vector(i)) is not None
                ]
            return _centroid(rows, width)

        key = (count, int(self.clock() // AGENT_CENTROID_SECONDS))
        return self._cached(agent_namespace(agent_id), key, compute), count

    def route(
        self,
        caller: Caller,
        query: Any,
        top_k: Any = 3,
        min_similarity: Any = 0.3,
        model: Any = None,
    ) -> dict[str, Any]:
        """The ``top_k`` namespaces most similar to ``query`` (at least ``min_similarity``)."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidInput("'query' must be a non-empty text")
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidInput(f"'query' must be at most {MAX_QUERY_CHARS} characters")
        if top_k is None:
            top_k = 3
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 100:
            raise InvalidInput("'top_k' must be a whole number from 1 to 100")
        floor = (
            0.3 if min_similarity is None else check_importance(min_similarity, "min_similarity")
        )
        model_name = check_model(self.namespaces, model)
        started = time.perf_counter()
        embedded = self.memories.embedder.embed([query]).vectors[0].astype(np.float32)
        embedding_ms = (time.perf_counter() - started) * 1000.0
        width = embedded.shape[0]
        norm = float(np.linalg.norm(embedded))
        unit = embedded / (norm or 1.0)
        routes: list[dict[str, Any]] = []
        for name, kind in self.namespaces.names(caller).items():
            if kind == "agent":
                centroid, count = self._agent_centroid(name.removeprefix("_dakera_agent_"), width)
            else:
                centroid, count = self._data_centroid(name, width)
            if centroid is None:
                continue
            similarity = float(np.dot(unit, centroid))
            if similarity >= floor:
                routes.append(
                    {
                        "namespace": name,
                        "similarity": round(similarity, 6),
                        "kind": kind,
                        "vector_count": count,
                        "description": f"{kind} namespace, centroid of {count} vectors",
                    }
                )
        routes.sort(key=lambda r: (-r["similarity"], r["namespace"]))
        return {
            "routes": routes[:top_k],
            "model": model_name,
            "embedding_time_ms": round(embedding_ms),
            "candidates": len(routes),
        }
