"""Tier 2 vector routes (dakera-api.md §4.13): multi-vector search, unified ``rank_by``
queries, aggregation, query explanation and cache warming."""

from __future__ import annotations

from typing import Annotated, Any

from dakera_server.api.bodies import json_body
from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.scopes import Routes, Scope
from dakera_server.api.vectors.models import (
    AggregateRequest,
    ExplainRequest,
    MultiVectorRequest,
    UnifiedQueryRequest,
    WarmCacheRequest,
)
from dakera_server.engine.vectors import advanced as vector_advanced
from dakera_server.engine.vectors import scan as vector_scan
from dakera_server.engine.vectors.search import QueryOptions

routes = Routes()


@routes.post("/v1/namespaces/{namespace}/multi-vector", scope=Scope.READ)
def multi_vector_search(
    namespace: str,
    body: Annotated[MultiVectorRequest, json_body(MultiVectorRequest)],
    engine: EngineDep,
    caller: CallerDep,
) -> dict[str, Any]:
    options = QueryOptions.parse(body.top_k, body.include_metadata, body.include_vectors)
    outcome, mmr = vector_advanced.multi_vector(
        engine.namespaces,
        caller,
        namespace,
        body.positive_vectors,
        negative=body.negative_vectors,
        options=options,
        filter=body.filter,
        mmr_lambda=body.mmr_lambda if body.enable_mmr is not False else None,
    )
    return {
        "results": [hit.to_wire() for hit in outcome.results[0]],
        "mmr_applied": mmr,
        "search_time_ms": round(outcome.search_ms, 3),
    }


@routes.post("/v1/namespaces/{namespace}/unified-query", scope=Scope.READ)
def unified_query(
    namespace: str,
    body: Annotated[UnifiedQueryRequest, json_body(UnifiedQueryRequest)],
    engine: EngineDep,
    caller: CallerDep,
) -> dict[str, Any]:
    options = QueryOptions.parse(body.top_k, body.include_metadata, body.include_vectors)
    outcome = vector_advanced.unified_query(
        engine.namespaces, caller, namespace, body.rank_by, options=options, filter=body.filter
    )
    return {
        "results": [hit.to_wire() for hit in outcome.results[0]],
        "next_cursor": None,
        "search_time_ms": round(outcome.search_ms, 3),
    }


@routes.post("/v1/namespaces/{namespace}/aggregate", scope=Scope.READ)
def aggregate(
    namespace: str, body: AggregateRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    return vector_scan.aggregate(
        engine.namespaces,
        caller,
        namespace,
        aggregate_by=body.aggregate_by,
        group_by=body.group_by,
        filter=body.filter,
        limit=body.limit,
    )


@routes.post("/v1/namespaces/{namespace}/explain", scope=Scope.READ)
def explain_query(
    namespace: str,
    body: Annotated[ExplainRequest, json_body(ExplainRequest)],
    engine: EngineDep,
    caller: CallerDep,
) -> dict[str, Any]:
    explanation = vector_advanced.explain(
        engine.namespaces,
        caller,
        namespace,
        query_type=body.query_type,
        top_k=body.top_k,
        vector=body.vector,
        text_query=body.text_query,
        filter=body.filter,
        execute=body.execute,
    )
    return explanation.to_wire()


@routes.post("/v1/namespaces/{namespace}/cache/warm", scope=Scope.WRITE)
def warm_cache(
    namespace: str, body: WarmCacheRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    outcome = vector_scan.warm(
        engine.namespaces,
        caller,
        namespace,
        vector_ids=body.vector_ids,
        priority=body.priority,
        target_tier=body.target_tier,
        access_pattern=body.access_pattern,
        max_vectors=body.max_vectors,
    )
    return outcome.to_wire()
