"""Multi-representation record routes (dakera-api.md §5.1): upsert and read."""

from __future__ import annotations

from typing import Any

from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.documents.models import UpsertRecordsRequest
from dakera_server.api.scopes import Routes, Scope

routes = Routes()


@routes.post("/v1/namespaces/{namespace}/records", scope=Scope.WRITE)
def upsert_records(
    namespace: str, body: UpsertRecordsRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    return {"upserted_count": engine.records.upsert(caller, namespace, body.records)}


@routes.get("/v1/namespaces/{namespace}/records/{record_id}", scope=Scope.READ)
def get_record(
    namespace: str,
    record_id: str,
    engine: EngineDep,
    caller: CallerDep,
    include_vectors: bool = False,
) -> dict[str, Any]:
    return engine.records.get(caller, namespace, record_id, include_vectors)
