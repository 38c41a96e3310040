"""Cluster, shard and maintenance routes (dakera-api.md §5): the one-node truth of this server
(``engine/ops/cluster.py``), plus admin vector export/import/versions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Query
from starlette.requests import Request

from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.scopes import Routes, Scope
from dakera_server.engine.ops.diagnostics import process_facts
from dakera_server.engine.vectors import scan as vector_scan
from dakera_server.engine.vectors import writes as vector_writes
from dakera_server.engine.vectors.input import NewVector
from dakera_server.errors import InvalidInput, NotFound

routes = Routes()

AnyBody = Annotated[Any, Body()]


def _fields(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    return body


@routes.get("/v1/admin/cluster/status", scope=Scope.ADMIN, unrestricted=True)
def cluster_status(engine: EngineDep, request: Request) -> dict[str, Any]:
    facts = engine.ops.inventory.all()
    answer = engine.ops.cluster.status(
        total_vectors=sum(f.vectors for f in facts), namespace_count=len(facts)
    )
    if engine.settings.redis_url is not None:
        answer["redis_healthy"] = not request.app.state.rate_limiter.degraded
    return answer


@routes.get("/v1/admin/cluster/nodes", scope=Scope.ADMIN, unrestricted=True)
def cluster_nodes(engine: EngineDep) -> list[dict[str, Any]]:
    facts = engine.ops.inventory.all()
    return engine.ops.cluster.nodes(
        vector_count=sum(f.vectors for f in facts), memory_bytes=process_facts()["memory_bytes"]
    )


@routes.get("/v1/admin/cluster/replication", scope=Scope.ADMIN, unrestricted=True)
def admin_cluster_replication(engine: EngineDep) -> dict[str, Any]:
    return engine.ops.cluster.replication()


@routes.get("/v1/admin/cluster/shards", scope=Scope.ADMIN, unrestricted=True)
def admin_list_shards(engine: EngineDep) -> dict[str, Any]:
    facts = engine.ops.inventory.all()
    return engine.ops.cluster.shards(namespaces=len(facts), vectors=sum(f.vectors for f in facts))


@routes.post("/v1/admin/cluster/shards/rebalance", scope=Scope.ADMIN, unrestricted=True)
def admin_rebalance_shards(engine: EngineDep, body: AnyBody = None) -> dict[str, Any]:
    fields = _fields(body)
    return engine.ops.cluster.rebalance(fields.get("dry_run", False), fields.get("shard_ids"))


@routes.get("/v1/admin/cluster/maintenance", scope=Scope.ADMIN, unrestricted=True)
def admin_maintenance_status(engine: EngineDep) -> dict[str, Any]:
    return engine.ops.maintenance.status()


@routes.post("/v1/admin/cluster/maintenance/enable", scope=Scope.ADMIN, unrestricted=True)
def admin_enable_maintenance(engine: EngineDep, body: AnyBody = None) -> dict[str, Any]:
    fields = _fields(body)
    return engine.ops.maintenance.enable(
        fields.get("reason"),
        reject_requests=fields.get("reject_requests", False),
        duration_minutes=fields.get("duration_minutes"),
        node_ids=fields.get("node_ids"),
        node_id=engine.ops.cluster.node_id,
        all_nodes=engine.ops.cluster.member_ids(),
    )


@routes.post("/v1/admin/cluster/maintenance/disable", scope=Scope.ADMIN, unrestricted=True)
def admin_disable_maintenance(engine: EngineDep, body: AnyBody = None) -> dict[str, Any]:
    return engine.ops.maintenance.disable(_fields(body).get("force"))


# ------------------------------------------------------------------ admin vectors
@routes.get("/v1/admin/vectors/{namespace}/export", scope=Scope.ADMIN)
def admin_export_vectors(
    namespace: str,
    engine: EngineDep,
    caller: CallerDep,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
) -> dict[str, Any]:
    page = vector_scan.export(engine.namespaces, caller, namespace, cursor=cursor, limit=limit)
    return {
        "namespace": namespace,
        "vectors": [v.to_wire() for v in page.vectors],
        "next_cursor": page.next_cursor,
        "total": page.total,
    }


@routes.post("/v1/admin/vectors/{namespace}/import", scope=Scope.ADMIN)
def admin_import_vectors(
    namespace: str, engine: EngineDep, caller: CallerDep, body: AnyBody = None
) -> dict[str, Any]:
    vectors = _fields(body).get("vectors")
    if not isinstance(vectors, list) or not all(isinstance(v, dict) for v in vectors):
        raise InvalidInput("'vectors' must be a list of {id, values, metadata?} objects")
    items = [
        NewVector(v.get("id"), v.get("values"), v.get("metadata"), v.get("ttl_seconds"))
        for v in vectors
    ]
    count = vector_writes.upsert(engine.namespaces, caller, namespace, items)
    return {"namespace": namespace, "imported": count, "upserted_count": count}


def _current_version(engine: Any, caller: Any, namespace: str, vector_id: str) -> dict[str, Any]:
    found = engine.namespaces.get(caller, namespace)
    record = found.records.get(vector_id)
    if record is None:
        raise NotFound(f"vector '{vector_id}' not found", resource="vector")
    return {
        "version": record.rev,
        "id": record.id,
        "values": found.values_of(record.id) if record.has_vector else None,
        "metadata": record.metadata,
        "current": True,
    }


@routes.get("/v1/admin/vectors/{namespace}/{vector_id}/versions", scope=Scope.ADMIN)
def admin_vector_versions(
    namespace: str, vector_id: str, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    current = _current_version(engine, caller, namespace, vector_id)
    return {
        "namespace": namespace,
        "vector_id": vector_id,
        "versions": [current],
        "total": 1,
        "retained": "current only: a write replaces a record, earlier versions are not kept",
    }


@routes.get("/v1/admin/vectors/{namespace}/{vector_id}/versions/{version}", scope=Scope.ADMIN)
def admin_vector_version(
    namespace: str, vector_id: str, version: int, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    current = _current_version(engine, caller, namespace, vector_id)
    if current["version"] != version:
        raise NotFound(
            f"version {version} of '{vector_id}' is not kept (current: {current['version']})",
            resource="vector_version",
        )
    return current
