"""Audit and event-stream routes (dakera-api.md §4.8, §4.9): list, export, and four SSE streams."""

from __future__ import annotations

from typing import Any

from fastapi import Query
from starlette.responses import Response, StreamingResponse

from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.scopes import Routes, Scope
from dakera_server.api.sse import sse_response
from dakera_server.engine.events.audit import DEFAULT_EXPORT_LIMIT, MAX_EXPORT_LIMIT, AuditQuery

routes = Routes()


@routes.get("/v1/audit", scope=Scope.READ)
def list_audit_events(
    engine: EngineDep,
    caller: CallerDep,
    agent_id: str | None = None,
    event_type: str | None = None,
    from_ts: str | None = Query(default=None, alias="from"),
    to_ts: str | None = Query(default=None, alias="to"),
    limit: str | None = None,
    cursor: str | None = None,
) -> dict[str, Any]:
    query = AuditQuery.parse(
        agent_id=agent_id,
        event_type=event_type,
        from_ts=from_ts,
        to_ts=to_ts,
        limit=limit,
        cursor=cursor,
    )
    page = engine.audit.list_events(caller, query)
    return {"events": page.events, "count": len(page.events), "cursor": page.cursor}


@routes.get("/v1/audit/export", scope=Scope.ADMIN)
def export_audit(
    engine: EngineDep,
    caller: CallerDep,
    format: str = "json",
    agent_id: str | None = None,
    event_type: str | None = None,
    from_ts: str | None = Query(default=None, alias="from"),
    to_ts: str | None = Query(default=None, alias="to"),
    limit: str | None = None,
) -> Any:
    query = AuditQuery.parse(
        agent_id=agent_id,
        event_type=event_type,
        from_ts=from_ts,
        to_ts=to_ts,
        limit=limit,
        default_limit=DEFAULT_EXPORT_LIMIT,
        max_limit=MAX_EXPORT_LIMIT,
    )
    export = engine.audit.export(caller, query, format)
    if export.format == "csv":
        return Response(export.to_csv(), media_type="text/csv; charset=utf-8")
    return export.to_json()


@routes.get("/v1/audit/stream", scope=Scope.READ)
def stream_audit_events(
    engine: EngineDep,
    caller: CallerDep,
    agent_id: str | None = None,
    event_type: str | None = None,
) -> StreamingResponse:
    stream = engine.audit.open_stream(caller, "audit", agent_id=agent_id, event_type=event_type)
    return sse_response(stream)


@routes.get("/v1/events/stream", scope=Scope.READ)
def stream_memory_events(
    engine: EngineDep, caller: CallerDep, agent_id: str | None = None
) -> StreamingResponse:
    return sse_response(engine.audit.open_stream(caller, "memory", agent_id=agent_id))


@routes.get("/v1/namespaces/{namespace}/events", scope=Scope.READ)
def stream_namespace_events(
    namespace: str, engine: EngineDep, caller: CallerDep
) -> StreamingResponse:
    name = engine.policies.visible_namespace(caller, namespace)
    return sse_response(engine.audit.open_stream(caller, "namespace", namespace=name))


@routes.get("/ops/events", scope=Scope.ADMIN)
def stream_global_events(engine: EngineDep, caller: CallerDep) -> StreamingResponse:
    return sse_response(engine.audit.open_stream(caller, "global"))
