"""Searches over a namespace: vector, text (server-side embedding), BM25 and hybrid.

Filters are compiled once (``engine/vectors/filters.py``) into an id predicate that the ANN and BM25
indexes apply *before* their top-k cut, so a filtered search returns ``k`` results whenever
``k`` records match. Scores are "higher = better" for every metric.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from dakera_server.engine.access import Caller
from dakera_server.engine.memory.fusion import minmax, rrf
from dakera_server.engine.vectors.engine import NamespaceEngine
from dakera_server.engine.vectors.filters import compile_filter
from dakera_server.engine.vectors.input import (
    check_distance,
    check_flag,
    check_query_vector,
    check_text,
    check_top_k,
    padded,
)
from dakera_server.engine.vectors.namespace import Allow, VectorNamespace
from dakera_server.engine.vectors.writes import check_model
from dakera_server.errors import DimensionMismatch, InvalidInput

__all__ = [
    "FUSIONS",
    "Hit",
    "QueryOptions",
    "SearchOutcome",
    "batch_query",
    "fulltext_search",
    "hybrid_search",
    "query",
    "query_text",
    "search_vector",
    "similarity",
]

F32 = npt.NDArray[np.float32]
FUSIONS = ("minmax", "rrf")
HYBRID_POOL = 100
MAX_QUERIES = 1000


@dataclass(frozen=True)
class Hit:
    """One search result; optional parts are ``None`` when not asked for."""

    id: str
    score: float
    metadata: dict[str, Any] | None = None
    vector: list[float] | None = None
    text: str | None = None
    vector_score: float | None = None
    text_score: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_wire(self, *, text_field: str = "text", vector_field: str = "vector") -> dict[str, Any]:
        """JSON form; ``text_field``/``vector_field`` follow each route's contract."""
        wire: dict[str, Any] = {"id": self.id, "score": self.score}
        if self.vector_score is not None:
            wire["vector_score"] = self.vector_score
        if self.text_score is not None:
            wire["text_score"] = self.text_score
        if self.text is not None:
            wire[text_field] = self.text
        if self.metadata is not None:
            wire["metadata"] = self.metadata
        if self.vector is not None:
            wire[vector_field] = self.vector
        wire.update(self.extra)
        return wire


@dataclass(frozen=True)
class QueryOptions:
    """What a search returns besides ids and scores, and how many."""

    top_k: int = 10
    include_metadata: bool = True
    include_vectors: bool = False
    include_text: bool = False

    @classmethod
    def parse(
        cls,
        top_k: Any = None,
        include_metadata: Any = None,
        include_vectors: Any = None,
        include_text: Any = None,
        *,
        text_default: bool = False,
    ) -> QueryOptions:
        """Validated options (400 naming the bad one)."""
        return cls(
            top_k=check_top_k(top_k),
            include_metadata=check_flag(include_metadata, "include_metadata", True),
            include_vectors=check_flag(include_vectors, "include_vectors", False),
            include_text=check_flag(include_text, "include_text", text_default),
        )


@dataclass
class SearchOutcome:
    """Results of one or several searches plus timings."""

    results: list[list[Hit]]
    search_ms: float = 0.0
    embedding_ms: float = 0.0
    model: str | None = None
    searched: int = 0


def similarity(metric: str, query: F32, rows: F32) -> F32:
    """Exact scores of ``rows`` for ``query`` with the namespace's metric (higher = closer)."""
    if metric == "euclidean":
        distances: F32 = np.linalg.norm(rows - query, axis=1).astype(np.float32)
        return -distances
    dots = (rows @ query).astype(np.float32)
    if metric == "dot_product":
        return dots
    norms = np.linalg.norm(rows, axis=1) * float(np.linalg.norm(query))
    return np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), 0.0).astype(np.float32)


def hits_for(
    namespace: VectorNamespace, pairs: list[tuple[str, float]], options: QueryOptions
) -> list[Hit]:
    """``(id, score)`` pairs dressed with what ``options`` ask for."""
    out = []
    for record_id, score in pairs:
        record = namespace.records.get(record_id)
        if record is None:
            continue
        vector = namespace.values_of(record_id) if options.include_vectors else None
        out.append(
            Hit(
                id=record_id,
                score=float(score),
                metadata=dict(record.metadata) if options.include_metadata else None,
                vector=vector,
                text=record.text if options.include_text else None,
            )
        )
    return out


def search_vector(
    namespace: VectorNamespace, vector: F32, k: int, allow: Allow | None
) -> list[tuple[str, float]]:
    """The index's top ``k`` for ``vector`` among ids ``allow`` passes."""
    index = namespace.index
    if index is None or len(index) == 0:
        return []
    return index.search(vector, k, allow)


def _check_metric(namespace: VectorNamespace, distance_metric: Any) -> None:
    if distance_metric is None:
        return
    metric = check_distance(distance_metric, "distance_metric")
    if metric != namespace.info.distance:
        raise InvalidInput(
            f"namespace '{namespace.name}' is indexed for {namespace.info.distance}; "
            f"'distance_metric' {metric} cannot be served (omit it)"
        )


def query(
    engine: NamespaceEngine,
    caller: Caller,
    name: str,
    vector: Any,
    *,
    options: QueryOptions,
    filter: Any = None,
    distance_metric: Any = None,
) -> SearchOutcome:
    """Top-k nearest records to ``vector`` among those passing ``filter``."""
    namespace = engine.get(caller, name)
    q = check_query_vector(vector, namespace.info.dimension, name, "vector")
    _check_metric(namespace, distance_metric)
    allow = namespace.allow(compile_filter(filter), engine.clock())
    started = time.perf_counter()
    pairs = search_vector(namespace, q, options.top_k, allow)
    hits = hits_for(namespace, pairs, options)
    return SearchOutcome(
        [hits], (time.perf_counter() - started) * 1000.0, searched=namespace.vector_count()
    )


def batch_query(engine: NamespaceEngine, caller: Caller, name: str, queries: Any) -> SearchOutcome:
    """Several vector queries, each with its own ``top_k``, ``filter`` and includes."""
    namespace = engine.get(caller, name)
    if not isinstance(queries, list) or not queries:
        raise InvalidInput("'queries' must be a non-empty list of query objects")
    if len(queries) > MAX_QUERIES:
        raise InvalidInput(f"'queries' holds more than {MAX_QUERIES} queries")
    now = engine.clock()
    plans = []
    for i, spec in enumerate(queries):
        if not isinstance(spec, dict):
            raise InvalidInput(f"'queries[{i}]' must be an object")
        vector = check_query_vector(
            spec.get("vector"), namespace.info.dimension, name, f"queries[{i}].vector"
        )
        include_vectors = spec.get("include_vectors", spec.get("include_values"))
        options = QueryOptions.parse(
            spec.get("top_k"), spec.get("include_metadata"), include_vectors
        )
        allow = namespace.allow(compile_filter(spec.get("filter"), f"queries[{i}].filter"), now)
        plans.append((vector, options, allow))
    started = time.perf_counter()
    results = [hits_for(namespace, search_vector(namespace, v, o.top_k, a), o) for v, o, a in plans]
    return SearchOutcome(results, (time.perf_counter() - started) * 1000.0)


def _embed_queries(
    engine: NamespaceEngine, namespace: VectorNamespace, texts: list[str]
) -> tuple[F32, float]:
    width = engine.embedder.dimension
    dimension = namespace.info.dimension or width
    if dimension < width:
        raise DimensionMismatch(
            f"namespace '{namespace.name}' has dimension {dimension}, smaller than the {width} "
            f"dimensions of the embedding model {engine.embedder.model_name}"
        )
    started = time.perf_counter()
    vectors = engine.embedder.embed(texts).vectors
    return padded(vectors, dimension), (time.perf_counter() - started) * 1000.0


def query_text(
    engine: NamespaceEngine,
    caller: Caller,
    name: str,
    texts: Any,
    *,
    options: QueryOptions,
    filter: Any = None,
    model: Any = None,
    batch: bool = False,
) -> SearchOutcome:
    """Embed one text (or, with ``batch``, a list of texts) and search by meaning."""
    model_name = check_model(engine, model)
    namespace = engine.get(caller, name)
    if batch:
        if not isinstance(texts, list) or not texts or len(texts) > MAX_QUERIES:
            raise InvalidInput(f"'queries' must be a list of 1 to {MAX_QUERIES} texts")
        items = [check_text(t, f"queries[{i}]") for i, t in enumerate(texts)]
    else:
        items = [check_text(texts, "text")]
    allow = namespace.allow(compile_filter(filter), engine.clock())
    vectors, embedding_ms = _embed_queries(engine, namespace, items)
    started = time.perf_counter()
    results = [
        hits_for(namespace, search_vector(namespace, v, options.top_k, allow), options)
        for v in vectors
    ]
    return SearchOutcome(
        results, (time.perf_counter() - started) * 1000.0, embedding_ms, model_name
    )


def fulltext_search(
    engine: NamespaceEngine, caller: Caller, name: str, text: Any, *, top_k: Any, filter: Any
) -> SearchOutcome:
    """BM25 top-k over the namespace's documents (English stemming and stop words)."""
    namespace = engine.get(caller, name)
    query_text_ = check_text(text, "query")
    k = check_top_k(top_k)
    allow = namespace.allow(compile_filter(filter), engine.clock())
    started = time.perf_counter()
    pairs = namespace.text.search(query_text_, k, allow)
    options = QueryOptions(top_k=k, include_text=True)
    return SearchOutcome(
        [hits_for(namespace, pairs, options)], (time.perf_counter() - started) * 1e3
    )


def _normalise(
    scores: dict[str, float], ranked: list[tuple[str, float]], fusion: str
) -> dict[str, float]:
    return rrf(ranked) if fusion == "rrf" else minmax(scores)


def hybrid_search(
    engine: NamespaceEngine,
    caller: Caller,
    name: str,
    text: Any,
    *,
    vector: Any = None,
    top_k: Any = None,
    vector_weight: Any = None,
    filter: Any = None,
    fusion: Any = None,
    include_vectors: Any = None,
) -> SearchOutcome:
    """Vector similarity and BM25 fused as ``w·vector + (1−w)·text`` after min-max (default)
    or RRF normalisation. Without a vector it is BM25 only (``vector_score`` 0)."""
    namespace = engine.get(caller, name)
    query_text_ = check_text(text, "text")
    k = check_top_k(top_k)
    weight = 0.5 if vector_weight is None else vector_weight
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1:
        raise InvalidInput("'vector_weight' must be a number between 0 and 1")
    method = "minmax" if fusion is None else str(fusion).lower()
    if method not in FUSIONS:
        raise InvalidInput(f"'fusion' must be one of {', '.join(FUSIONS)}")
    with_vectors = check_flag(include_vectors, "include_vectors", False)
    allow = namespace.allow(compile_filter(filter), engine.clock())
    started = time.perf_counter()
    options = QueryOptions(top_k=k, include_text=True, include_vectors=with_vectors)
    if vector is None:
        pairs = namespace.text.search(query_text_, k, allow)
        hits = [
            Hit(h.id, h.score, h.metadata, h.vector, h.text, vector_score=0.0, text_score=h.score)
            for h in hits_for(namespace, pairs, options)
        ]
        return SearchOutcome([hits], (time.perf_counter() - started) * 1e3)
    q = check_query_vector(vector, namespace.info.dimension, name, "vector")
    pool = max(HYBRID_POOL, 2 * k)
    vector_ranked = search_vector(namespace, q, pool, allow)
    text_ranked = namespace.text.search(query_text_, pool, allow)
    text_raw = dict(text_ranked)
    candidates = list(dict.fromkeys([i for i, _ in vector_ranked] + [i for i, _ in text_ranked]))
    vector_raw = _exact_scores(namespace, q, candidates)
    vector_norm = _normalise(vector_raw, vector_ranked, method)
    text_norm = _normalise(text_raw, text_ranked, method)
    fused = sorted(
        (
            (weight * vector_norm.get(i, 0.0) + (1 - weight) * text_norm.get(i, 0.0), i)
            for i in candidates
        ),
        key=lambda pair: (-pair[0], pair[1]),
    )[:k]
    hits = [
        Hit(
            h.id,
            h.score,
            h.metadata,
            h.vector,
            h.text,
            vector_score=vector_raw.get(h.id, 0.0),
            text_score=text_raw.get(h.id, 0.0),
        )
        for h in hits_for(namespace, [(i, s) for s, i in fused], options)
    ]
    return SearchOutcome([hits], (time.perf_counter() - started) * 1e3)


def _exact_scores(namespace: VectorNamespace, q: F32, ids: list[str]) -> dict[str, float]:
    """Exact similarity of ``q`` to each id that has a vector."""
    index = namespace.index
    if index is None or not ids:
        return {}
    held = [(i, index.get_vector(i)) for i in ids]
    present = [(i, v) for i, v in held if v is not None]
    if not present:
        return {}
    scores = similarity(namespace.info.distance, q, np.stack([v for _, v in present]))
    return {i: float(s) for (i, _), s in zip(present, scores, strict=True)}
