"""Ops routes (dakera-api.md §4.11): stats, configuration, diagnostics, compaction, shutdown."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import Body
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse

from dakera_server import API_VERSION, __version__
from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.scopes import Routes, Scope
from dakera_server.engine.ops.diagnostics import process_facts, public_settings
from dakera_server.errors import FeatureNotAvailable

routes = Routes()


@routes.get("/v1/ops/stats", scope=Scope.READ)
def ops_stats(engine: EngineDep, caller: CallerDep, request: Request) -> dict[str, Any]:
    visible = set(engine.namespaces.names(caller))
    facts = [f for f in engine.ops.inventory.all() if f.name in visible]
    reasons = []
    if not engine.ready:
        reasons.append("loading indexes")
    if request.app.state.rate_limiter.degraded:
        reasons.append("rate limits fell back to local counts (Redis unreachable)")
    if engine.ops.maintenance.active():
        reasons.append("maintenance mode")
    return {
        "version": API_VERSION,
        "server_version": __version__,
        "total_vectors": sum(f.vectors for f in facts),
        "total_records": sum(f.records for f in facts),
        "namespace_count": len(facts),
        "uptime_seconds": int(time.time() - engine.started_at),
        "timestamp": int(time.time()),
        "state": "degraded" if reasons else "healthy",
        "reasons": reasons,
    }


@routes.get("/debug/config", scope=Scope.ADMIN, unrestricted=True)
def debug_config(engine: EngineDep) -> dict[str, Any]:
    shown, withheld = public_settings(engine.settings)
    return {
        **shown,
        "_version": API_VERSION,
        "_server_version": __version__,
        "_withheld": withheld,
        "_runtime_overrides": dict(engine.ops.runtime.overrides),
    }


@routes.get("/ops/diagnostics", scope=Scope.ADMIN, unrestricted=True)
def ops_diagnostics(engine: EngineDep, request: Request) -> dict[str, Any]:
    jobs = engine.lifecycle.jobs.list()
    facts = engine.ops.inventory.all()
    process = process_facts()
    return {
        "status": "ok" if engine.ready else "starting",
        "system": {
            "version": API_VERSION,
            "server_version": __version__,
            "python_version": process["python_version"],
            "uptime_seconds": int(time.time() - engine.started_at),
            "pid": process["pid"],
        },
        "resources": process,
        "components": {
            "storage": {"healthy": True, "disk": engine.store.disk_usage()},
            "embedding_engine": {
                "healthy": True,
                "model": engine.embedder.model_name,
                "dimension": engine.embedder.dimension,
            },
            "indexes": {
                "healthy": True,
                "namespaces": len(facts),
                "pending_vectors": sum(f.pending for f in facts),
            },
            "rate_limit": request.app.state.rate_limiter.status(),
            "grpc": {"enabled": engine.settings.grpc_enabled},
        },
        "requests_in_flight": engine.ops.metrics.in_flight,
        "active_jobs": sum(1 for j in jobs if j.status in ("queued", "running")),
        "metrics_snapshots": engine.ops.history.count(),
    }


@routes.post("/ops/compact", scope=Scope.ADMIN, unrestricted=True)
def compact(engine: EngineDep, body: Annotated[Any, Body()] = None) -> dict[str, Any]:
    fields = body if isinstance(body, dict) else {}
    return engine.ops.upkeep.compact(fields.get("namespace"), fields.get("force", False))


@routes.post("/ops/shutdown", scope=Scope.SUPER_ADMIN, unrestricted=True)
def ops_shutdown(engine: EngineDep, request: Request) -> JSONResponse:
    trigger = getattr(request.app.state, "request_shutdown", None)
    if trigger is None:
        raise FeatureNotAvailable(
            "this process was not started by 'dakera-server serve': stop it the way it was started"
        )
    answer = {
        "status": "shutting_down",
        "draining": True,
        "requests_in_flight": max(0, engine.ops.metrics.in_flight - 1),
        "message": "no new connections; in-flight requests, the audit queue and the event log "
        "are drained before the process exits",
    }
    # After the answer is sent: the server stops accepting, waits for in-flight requests and
    # runs the lifespan shutdown (audit queue, event log, last snapshots).
    return JSONResponse(answer, background=BackgroundTask(trigger))
