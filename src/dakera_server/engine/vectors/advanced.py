"""Tier 2 searches (dakera-api.md §4.13): multi-vector with MMR, ``rank_by`` unified queries,
and query explanations.

Candidates always come from the indexes with the filter applied before their top-k cut; the
final ranking is then computed exactly over those candidates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from dakera_server.engine.access import Caller
from dakera_server.engine.vectors.engine import NamespaceEngine
from dakera_server.engine.vectors.filters import MatchAll, compile_filter
from dakera_server.engine.vectors.input import check_query_vector, check_text, check_top_k
from dakera_server.engine.vectors.namespace import Allow, VectorNamespace
from dakera_server.engine.vectors.search import (
    F32,
    Hit,
    QueryOptions,
    SearchOutcome,
    hits_for,
    search_vector,
    similarity,
)
from dakera_server.errors import InvalidInput

__all__ = ["QUERY_TYPES", "Explanation", "explain", "multi_vector", "unified_query"]

CANDIDATE_POOL = 100
MAX_VECTORS = 64
QUERY_TYPES = ("vector_search", "full_text_search", "hybrid_search", "multi_vector", "batch_query")


def _vectors(value: Any, namespace: VectorNamespace, where: str, required: bool) -> list[F32]:
    if value is None and not required:
        return []
    if not isinstance(value, list) or (required and not value) or len(value) > MAX_VECTORS:
        raise InvalidInput(f"'{where}' must be a list of 1 to {MAX_VECTORS} vectors")
    return [
        check_query_vector(v, namespace.info.dimension, namespace.name, f"{where}[{i}]")
        for i, v in enumerate(value)
    ]


def _stored(namespace: VectorNamespace, ids: list[str]) -> tuple[list[str], F32]:
    index = namespace.index
    held = [(i, index.get_vector(i) if index is not None else None) for i in ids]
    present = [(i, v) for i, v in held if v is not None]
    if not present:
        return [], np.zeros((0, namespace.info.dimension or 1), dtype=np.float32)
    return [i for i, _ in present], np.stack([v for _, v in present])


def multi_vector(
    engine: NamespaceEngine,
    caller: Caller,
    name: str,
    positive: Any,
    *,
    negative: Any = None,
    options: QueryOptions,
    filter: Any = None,
    mmr_lambda: Any = None,
) -> tuple[SearchOutcome, bool]:
    """Records close to the positive vectors and far from the negative ones: score = mean
    similarity to the positives − mean similarity to the negatives. With ``mmr_lambda`` the
    top-k is re-ranked by maximal marginal relevance (λ·score − (1−λ)·max cosine to the
    results already picked). Returns the outcome and whether MMR ran."""
    namespace = engine.get(caller, name)
    positives = _vectors(positive, namespace, "positive_vectors", True)
    negatives = _vectors(negative, namespace, "negative_vectors", False)
    lam = None
    if mmr_lambda is not None:
        if isinstance(mmr_lambda, bool) or not isinstance(mmr_lambda, int | float):
            raise InvalidInput("'mmr_lambda' must be a number between 0 and 1")
        if not 0 <= mmr_lambda <= 1:
            raise InvalidInput("'mmr_lambda' must be a number between 0 and 1")
        lam = float(mmr_lambda)
    allow = namespace.allow(compile_filter(filter), engine.clock())
    started = time.perf_counter()
    pool = max(CANDIDATE_POOL, (10 if lam is not None else 4) * options.top_k)
    centroid = np.mean([_unit(v) for v in positives], axis=0).astype(np.float32)
    if not np.any(centroid):
        centroid = positives[0]
    candidates = [i for i, _ in search_vector(namespace, centroid, pool, allow)]
    ids, rows = _stored(namespace, candidates)
    metric = namespace.info.distance
    scores = np.mean([similarity(metric, p, rows) for p in positives], axis=0) if ids else []
    if ids and negatives:
        scores = scores - np.mean([similarity(metric, n, rows) for n in negatives], axis=0)
    order = _mmr(rows, np.asarray(scores), options.top_k, lam) if ids else []
    pairs = [(ids[i], float(scores[i])) for i in order]
    outcome = SearchOutcome(
        [hits_for(namespace, pairs, options)], (time.perf_counter() - started) * 1e3
    )
    return outcome, lam is not None


def _unit(vector: F32) -> F32:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _mmr(rows: F32, scores: np.ndarray, k: int, lam: float | None) -> list[int]:
    ranked = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    if lam is None:
        return ranked[:k]
    units = np.stack([_unit(r) for r in rows])
    chosen: list[int] = []
    remaining = ranked
    while remaining and len(chosen) < k:
        if chosen:
            redundancy = (units[remaining] @ units[chosen].T).max(axis=1)
        else:
            redundancy = np.zeros(len(remaining))
        gains = lam * scores[remaining] - (1 - lam) * redundancy
        best = remaining[int(np.argmax(gains))]
        chosen.append(best)
        remaining = [i for i in remaining if i != best]
    return chosen


# --- unified query -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    kind: str  # ann | bm25 | sum | product | attr
    vector: F32 | None = None
    text: str = ""
    weight: float = 1.0
    children: tuple[_Node, ...] = ()
    field: str = ""
    descending: bool = True


def _parse_rank(expr: Any, namespace: VectorNamespace, where: str, top: bool) -> _Node:
    if not isinstance(expr, list) or not expr or not isinstance(expr[0], str):
        raise InvalidInput(f"'{where}' must be a rank_by expression such as [\"ANN\", [...]]")
    head = expr[0]
    if head == "ANN" and len(expr) == 2:
        vector = check_query_vector(expr[1], namespace.info.dimension, namespace.name, where)
        return _Node("ann", vector=vector)
    if len(expr) == 3 and expr[1] == "BM25":
        if expr[0] not in ("text", "content", "_text"):
            raise InvalidInput(f"'{where}': only the document text is BM25-indexed; use \"text\"")
        return _Node("bm25", text=check_text(expr[2], f"{where}[2]"))
    if head == "Sum" and len(expr) == 2 and isinstance(expr[1], list) and expr[1]:
        parts = [
            _parse_rank(e, namespace, f"{where}[1][{i}]", False) for i, e in enumerate(expr[1])
        ]
        return _Node("sum", children=tuple(parts))
    if head == "Product" and len(expr) == 3:
        weight = expr[1]
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise InvalidInput(f"'{where}[1]' must be a number (the weight)")
        child = _parse_rank(expr[2], namespace, f"{where}[2]", False)
        return _Node("product", weight=float(weight), children=(child,))
    if len(expr) == 2 and expr[1] in ("asc", "desc"):
        if not top:
            raise InvalidInput(f"'{where}': attribute ordering cannot be combined with scores")
        return _Node("attr", field=head, descending=expr[1] == "desc")
    raise InvalidInput(f"'{where}' is not a rank_by expression this server understands")


def _leaves(node: _Node) -> list[_Node]:
    if node.kind in ("ann", "bm25"):
        return [node]
    return [leaf for child in node.children for leaf in _leaves(child)]


def unified_query(
    engine: NamespaceEngine,
    caller: Caller,
    name: str,
    rank_by: Any,
    *,
    options: QueryOptions,
    filter: Any = None,
) -> SearchOutcome:
    """Rank by a ``rank_by`` expression (``ANN``, ``BM25``, ``Sum``, ``Product`` or an
    attribute). Each hit carries ``$dist``: the distance for a plain ANN query, the score
    otherwise."""
    namespace = engine.get(caller, name)
    root = _parse_rank(rank_by, namespace, "rank_by", True)
    predicate = compile_filter(filter)
    now = engine.clock()
    started = time.perf_counter()
    if root.kind == "attr":
        pairs = _by_attribute(namespace, root, predicate, now, options.top_k)
        return SearchOutcome(
            [hits_for(namespace, pairs, options)], (time.perf_counter() - started) * 1e3
        )
    allow = namespace.allow(predicate, now)
    pool = max(CANDIDATE_POOL, 2 * options.top_k)
    leaf_scores: list[dict[str, float]] = []
    candidates: dict[str, None] = {}
    for leaf in _leaves(root):
        ranked = _leaf_candidates(namespace, leaf, pool, allow)
        candidates.update(dict.fromkeys(i for i, _ in ranked))
        leaf_scores.append(dict(ranked))
    ids = list(candidates)
    if any(leaf.kind == "ann" for leaf in _leaves(root)):
        present, rows = _stored(namespace, ids)
        for leaf, scores in zip(_leaves(root), leaf_scores, strict=True):
            if leaf.kind == "ann" and leaf.vector is not None and present:
                exact = similarity(namespace.info.distance, leaf.vector, rows)
                scores.update(zip(present, exact.tolist(), strict=True))
    values = {i: _evaluate(root, i, iter(leaf_scores)) for i in ids}
    top = sorted(values.items(), key=lambda pair: (-pair[1], pair[0]))[: options.top_k]
    hits = [
        Hit(
            h.id,
            h.score,
            h.metadata,
            h.vector,
            h.text,
            extra={"$dist": _distance(namespace, h.score) if root.kind == "ann" else h.score},
        )
        for h in hits_for(namespace, top, options)
    ]
    return SearchOutcome([hits], (time.perf_counter() - started) * 1e3)


def _leaf_candidates(
    namespace: VectorNamespace, leaf: _Node, pool: int, allow: Allow | None
) -> list[tuple[str, float]]:
    if leaf.kind == "ann" and leaf.vector is not None:
        return search_vector(namespace, leaf.vector, pool, allow)
    return namespace.text.search(leaf.text, pool, allow)


def _evaluate(node: _Node, record_id: str, scores: Any) -> float:
    """Score of one record; ``scores`` yields the leaves' score maps in ``_leaves`` order."""
    if node.kind in ("ann", "bm25"):
        return float(next(scores).get(record_id, 0.0))
    if node.kind == "product":
        return node.weight * _evaluate(node.children[0], record_id, scores)
    return sum(_evaluate(child, record_id, scores) for child in node.children)


def _distance(namespace: VectorNamespace, score: float) -> float:
    if namespace.info.distance == "cosine":
        return 1.0 - score
    return -score


def _by_attribute(
    namespace: VectorNamespace, node: _Node, predicate: Any, now: float, k: int
) -> list[tuple[str, float]]:
    def key(value: Any) -> tuple[int, Any]:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return (0, value)
        if isinstance(value, str):
            return (1, value)
        return (2, 0)

    rows = [
        (r.id, r.metadata.get(node.field))
        for r in namespace.matching(predicate, now, vectors_only=True)
        if node.field in r.metadata
    ]
    rows.sort(key=lambda row: key(row[1]), reverse=node.descending)
    return [(i, float(v) if isinstance(v, int | float) else 0.0) for i, v in rows[:k]]


# --- explain -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Explanation:
    """A query plan and, when executed, what it measured."""

    plan: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        """JSON form."""
        return self.plan


def explain(
    engine: NamespaceEngine,
    caller: Caller,
    name: str,
    *,
    query_type: Any,
    top_k: Any,
    vector: Any = None,
    text_query: Any = None,
    filter: Any = None,
    execute: Any = False,
) -> Explanation:
    """How this server would run a query on ``name`` (and, with ``execute``, the numbers)."""
    from dakera_server.engine.vectors.search import fulltext_search, hybrid_search, query

    namespace = engine.get(caller, name)
    kind = "vector_search" if query_type is None else query_type
    if kind not in QUERY_TYPES:
        raise InvalidInput(f"'query_type' must be one of {', '.join(QUERY_TYPES)}")
    k = check_top_k(top_k)
    predicate = compile_filter(filter)
    now = engine.clock()
    matching = len(namespace.matching(predicate, now)) if predicate is not MatchAll else None
    backend = namespace.backend()
    steps = []
    if filter:
        steps.append(
            {
                "step": "filter",
                "description": "compile the metadata filter into an "
                "id predicate applied inside the index search, before the top-k cut",
                "estimated_matches": matching,
            }
        )
    if kind in ("vector_search", "hybrid_search", "multi_vector", "batch_query"):
        steps.append(
            {
                "step": "vector_search",
                "index": backend,
                "metric": namespace.info.distance,
                "description": "exact scan of the allowed vectors"
                if backend == "exact"
                else "HNSW graph search (exact scan instead when few ids pass the filter)",
            }
        )
    if kind in ("full_text_search", "hybrid_search"):
        steps.append(
            {
                "step": "bm25",
                "description": "BM25 over the namespace documents, English stemming and stop words",
                "documents": len(namespace.text),
            }
        )
    if kind == "hybrid_search":
        steps.append(
            {
                "step": "fusion",
                "description": "min-max normalise both score lists and "
                "blend them with vector_weight",
            }
        )
    steps.append({"step": "top_k", "k": k})
    plan: dict[str, Any] = {
        "namespace": name,
        "query_type": kind,
        "index_type": namespace.info.index_type,
        "search_backend": backend,
        "vector_count": namespace.vector_count(),
        "document_count": len(namespace.text),
        "dimension": namespace.info.dimension,
        "filter_applied": bool(filter),
        "steps": steps,
        "executed": bool(execute),
    }
    if execute:
        started = time.perf_counter()
        if kind == "full_text_search":
            outcome = fulltext_search(engine, caller, name, text_query, top_k=k, filter=filter)
        elif kind == "hybrid_search":
            outcome = hybrid_search(
                engine, caller, name, text_query, vector=vector, top_k=k, filter=filter
            )
        else:
            outcome = query(
                engine, caller, name, vector, options=QueryOptions(top_k=k), filter=filter
            )
        plan["actual_stats"] = {
            "results_returned": len(outcome.results[0]),
            "execution_time_ms": round((time.perf_counter() - started) * 1e3, 3),
            "top_score": outcome.results[0][0].score if outcome.results[0] else None,
        }
    return Explanation(plan)
