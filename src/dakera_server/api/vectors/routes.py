"""Raw vector routes (dakera-api.md §3.3, §4.13): upsert, query, delete, fetch, count,
bulk update, column upsert, batch query and paged export."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from starlette.responses import Response

from dakera_server.api.bodies import json_body
from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.scopes import Routes, Scope
from dakera_server.api.vectors.models import (
    BatchQueryRequest,
    BulkDeleteRequest,
    BulkUpdateRequest,
    CountRequest,
    DeleteVectorsRequest,
    ExportRequest,
    FetchRequest,
    QueryRequest,
    UpsertColumnsRequest,
    UpsertRequest,
)
from dakera_server.engine.vectors import scan as vector_scan
from dakera_server.engine.vectors import search as vector_search
from dakera_server.engine.vectors import writes as vector_writes
from dakera_server.engine.vectors.input import NewVector
from dakera_server.engine.vectors.search import QueryOptions

routes = Routes()


@routes.post("/v1/namespaces/{namespace}/vectors", scope=Scope.WRITE)
def upsert(
    namespace: str,
    body: Annotated[UpsertRequest, json_body(UpsertRequest)],
    engine: EngineDep,
    caller: CallerDep,
) -> dict[str, Any]:
    items = [NewVector(v.id, v.values, v.metadata, v.ttl_seconds) for v in body.vectors or []]
    count = vector_writes.upsert(engine.namespaces, caller, namespace, items)
    return {"upserted_count": count}


@routes.post("/v1/namespaces/{namespace}/upsert-columns", scope=Scope.WRITE)
def upsert_columns(
    namespace: str,
    body: Annotated[UpsertColumnsRequest, json_body(UpsertColumnsRequest)],
    engine: EngineDep,
    caller: CallerDep,
) -> dict[str, Any]:
    count = vector_writes.upsert_columns(
        engine.namespaces,
        caller,
        namespace,
        body.ids,
        body.vectors,
        body.attributes,
        body.ttl_seconds,
        body.dimension,
    )
    return {"upserted_count": count}


# ``async``: a query is a sub-millisecond index search with no I/O, so running it on the event
# loop saves the two thread hand-offs a sync handler costs (the hot path of the vector API);
# the answer is encoded by orjson directly, skipping FastAPI's generic encoder.
@routes.post("/v1/namespaces/{namespace}/query", scope=Scope.READ)
async def query(
    namespace: str,
    body: Annotated[QueryRequest, json_body(QueryRequest)],
    engine: EngineDep,
    caller: CallerDep,
) -> Response:
    include_vectors = (
        body.include_vectors if body.include_vectors is not None else body.include_values
    )
    options = QueryOptions.parse(body.top_k, body.include_metadata, include_vectors)
    outcome = vector_search.query(
        engine.namespaces,
        caller,
        namespace,
        body.vector,
        options=options,
        filter=body.filter,
        distance_metric=body.distance_metric,
    )
    answer = {
        "results": [hit.to_wire() for hit in outcome.results[0]],
        "total_searched": outcome.searched,
        "search_time_ms": round(outcome.search_ms, 3),
    }
    return Response(orjson.dumps(answer), media_type="application/json")


@routes.post("/v1/namespaces/{namespace}/batch-query", scope=Scope.READ)
def batch_query(
    namespace: str,
    body: Annotated[BatchQueryRequest, json_body(BatchQueryRequest)],
    engine: EngineDep,
    caller: CallerDep,
) -> dict[str, Any]:
    outcome = vector_search.batch_query(engine.namespaces, caller, namespace, body.queries)
    return {
        "results": [{"results": [h.to_wire() for h in hits]} for hits in outcome.results],
        "search_time_ms": round(outcome.search_ms, 3),
    }


@routes.post("/v1/namespaces/{namespace}/vectors/delete", scope=Scope.WRITE)
def delete(
    namespace: str, body: DeleteVectorsRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    if body.delete_all is True:
        return {"deleted_count": vector_writes.delete_all(engine.namespaces, caller, namespace)}
    count = vector_writes.delete_ids(engine.namespaces, caller, namespace, body.ids)
    return {"deleted_count": count}


@routes.post("/v1/namespaces/{namespace}/vectors/bulk-delete", scope=Scope.WRITE)
def bulk_delete_vectors(
    namespace: str, body: BulkDeleteRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    count = vector_writes.delete_where(engine.namespaces, caller, namespace, body.filter)
    return {"deleted": count, "failed": 0, "errors": []}


@routes.post("/v1/namespaces/{namespace}/vectors/bulk-update", scope=Scope.WRITE)
def bulk_update_vectors(
    namespace: str, body: BulkUpdateRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    count = vector_writes.update_where(
        engine.namespaces, caller, namespace, body.filter, body.update
    )
    return {"updated": count, "failed": 0, "errors": []}


@routes.post("/v1/namespaces/{namespace}/vectors/count", scope=Scope.READ)
def count_vectors(
    namespace: str,
    body: Annotated[CountRequest, json_body(CountRequest)],
    engine: EngineDep,
    caller: CallerDep,
) -> dict[str, Any]:
    count = vector_scan.count(engine.namespaces, caller, namespace, body.filter)
    return {"count": count, "namespace": namespace}


@routes.post("/v1/namespaces/{namespace}/fetch", scope=Scope.READ)
def fetch(
    namespace: str, body: FetchRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    include_values = (
        body.include_values if body.include_values is not None else body.include_vectors
    )
    vectors = vector_scan.fetch(
        engine.namespaces,
        caller,
        namespace,
        body.ids,
        include_values=include_values,
        include_metadata=body.include_metadata,
    )
    return {"vectors": [v.to_wire() for v in vectors], "namespace": namespace}


@routes.post("/v1/namespaces/{namespace}/export", scope=Scope.READ)
def export_vectors(
    namespace: str,
    body: Annotated[ExportRequest, json_body(ExportRequest)],
    engine: EngineDep,
    caller: CallerDep,
) -> dict[str, Any]:
    page = vector_scan.export(
        engine.namespaces,
        caller,
        namespace,
        cursor=body.cursor,
        limit=body.limit,
        filter=body.filter,
        include_vectors=body.include_vectors,
    )
    return {
        "vectors": [v.to_wire() for v in page.vectors],
        "next_cursor": page.next_cursor,
        "total_count": page.total,
    }
