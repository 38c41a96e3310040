"""Text routes of a namespace (dakera-api.md §3.4-3.6): server-side embedding, BM25 full text
and hybrid search. The ``model`` in every answer is the one that really embedded the text."""

from __future__ import annotations

from typing import Any

from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.scopes import Routes, Scope
from dakera_server.api.vectors.models import (
    BatchQueryTextRequest,
    FulltextDeleteRequest,
    FulltextIndexRequest,
    FulltextSearchRequest,
    HybridRequest,
    QueryTextRequest,
    UpsertTextRequest,
)
from dakera_server.engine.vectors import scan as vector_scan
from dakera_server.engine.vectors import search as vector_search
from dakera_server.engine.vectors import writes as vector_writes
from dakera_server.engine.vectors.input import NewDocument
from dakera_server.engine.vectors.search import QueryOptions

routes = Routes()


def _documents(body: UpsertTextRequest | FulltextIndexRequest) -> list[NewDocument]:
    return [
        NewDocument(d.id, d.text if d.text is not None else d.content, d.metadata, d.ttl_seconds)
        for d in body.documents or []
    ]


@routes.post("/v1/namespaces/{namespace}/upsert-text", scope=Scope.WRITE)
def upsert_text(
    namespace: str, body: UpsertTextRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    outcome = vector_writes.upsert_text(
        engine.namespaces, caller, namespace, _documents(body), body.model
    )
    return {
        "upserted_count": outcome.upserted_count,
        "tokens_processed": outcome.tokens_processed,
        "model": outcome.model,
        "embedding_time_ms": round(outcome.embedding_ms),
    }


@routes.post("/v1/namespaces/{namespace}/query-text", scope=Scope.READ)
def query_text(
    namespace: str, body: QueryTextRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    options = QueryOptions.parse(
        body.top_k,
        body.include_metadata,
        body.include_vectors,
        body.include_text,
        text_default=True,
    )
    outcome = vector_search.query_text(
        engine.namespaces,
        caller,
        namespace,
        body.text if body.text is not None else body.query,
        options=options,
        filter=body.filter,
        model=body.model,
    )
    return {
        "results": [hit.to_wire() for hit in outcome.results[0]],
        "model": outcome.model,
        "embedding_time_ms": round(outcome.embedding_ms),
        "search_time_ms": round(outcome.search_ms),
    }


@routes.post("/v1/namespaces/{namespace}/batch-query-text", scope=Scope.READ)
def batch_query_text(
    namespace: str, body: BatchQueryTextRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    options = QueryOptions.parse(
        body.top_k,
        body.include_metadata,
        body.include_vectors,
        body.include_text,
        text_default=True,
    )
    outcome = vector_search.query_text(
        engine.namespaces,
        caller,
        namespace,
        body.queries,
        options=options,
        filter=body.filter,
        model=body.model,
        batch=True,
    )
    return {
        "results": [[hit.to_wire() for hit in hits] for hits in outcome.results],
        "model": outcome.model,
        "embedding_time_ms": round(outcome.embedding_ms),
        "search_time_ms": round(outcome.search_ms),
    }


@routes.post("/v1/namespaces/{namespace}/fulltext/index", scope=Scope.WRITE)
def index_documents(
    namespace: str, body: FulltextIndexRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    count = vector_writes.index_documents(engine.namespaces, caller, namespace, _documents(body))
    return {"indexed_count": count}


@routes.post("/v1/namespaces/{namespace}/fulltext/search", scope=Scope.READ)
def fulltext_search(
    namespace: str, body: FulltextSearchRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    outcome = vector_search.fulltext_search(
        engine.namespaces,
        caller,
        namespace,
        body.query if body.query is not None else body.text,
        top_k=body.top_k,
        filter=body.filter,
    )
    return {
        "results": [hit.to_wire(text_field="content") for hit in outcome.results[0]],
        "search_time_ms": round(outcome.search_ms, 3),
    }


@routes.get("/v1/namespaces/{namespace}/fulltext/stats", scope=Scope.READ)
def fulltext_stats(namespace: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    stats = vector_scan.fulltext_stats(engine.namespaces, caller, namespace)
    return {
        "namespace": namespace,
        "document_count": stats.document_count,
        "unique_terms": stats.unique_terms,
        "avg_doc_length": stats.avg_doc_length,
    }


@routes.post("/v1/namespaces/{namespace}/fulltext/delete", scope=Scope.WRITE)
def fulltext_delete(
    namespace: str, body: FulltextDeleteRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    count = vector_writes.fulltext_delete(engine.namespaces, caller, namespace, body.ids)
    return {"deleted_count": count}


@routes.post("/v1/namespaces/{namespace}/hybrid", scope=Scope.READ)
def hybrid_search(
    namespace: str, body: HybridRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    outcome = vector_search.hybrid_search(
        engine.namespaces,
        caller,
        namespace,
        body.text if body.text is not None else body.query,
        vector=body.vector,
        top_k=body.top_k,
        vector_weight=body.vector_weight,
        filter=body.filter,
        fusion=body.fusion,
        include_vectors=body.include_vectors,
    )
    return {
        "results": [
            hit.to_wire(text_field="content", vector_field="values") for hit in outcome.results[0]
        ],
        "search_time_ms": round(outcome.search_ms, 3),
    }
