"""Health probes, capabilities and whoami (Prometheus metrics: ``api/ops/prometheus.py``)."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dakera_server import API_VERSION
from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.documents.capabilities import file_capabilities
from dakera_server.api.scopes import Routes, Scope
from dakera_server.engine.rules import (
    AGENT_ID_MAX_BYTES,
    AGENT_ID_PATTERN,
    NAMESPACE_MAX_BYTES,
    NAMESPACE_PATTERN,
    SESSION_ID_MAX_BYTES,
    SESSION_ID_PATTERN,
)

routes = Routes()


@routes.get("/health", scope=Scope.PUBLIC)
async def health(engine: EngineDep, request: Request) -> Response:
    if not engine.ready:
        return JSONResponse(
            {"service": "dakera", "status": "starting", "version": API_VERSION},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    # Degraded when Redis is configured and down (rate limits fell back to local) or the
    # shared PostgreSQL store is unreachable (cached reads only, writes 503).
    limiter = request.app.state.rate_limiter
    problem = engine.store_problem()
    details: dict[str, Any] = {"rate_limit": limiter.status()}
    if problem is not None:
        details["storage"] = problem
    return JSONResponse(
        {
            "service": "dakera",
            "status": "degraded" if limiter.degraded or problem else "healthy",
            "version": API_VERSION,
            "details": details,
        }
    )


@routes.get("/health/ready", scope=Scope.PUBLIC)
async def health_ready(engine: EngineDep, request: Request) -> Response:
    limits = request.app.state.rate_limiter.status()
    checks = {
        "rate_limit": {
            "status": "degraded" if limits["redis"] == "unreachable" else "ok",
            "message": f"counts are {limits['backend']}",
        },
        "storage": (
            {"status": "ok", "message": None}
            if (problem := engine.store_problem()) is None
            else {"status": "degraded", "message": problem}
        ),
        "embedding_engine": {"status": "ok", "message": engine.embedder.model_name},
        "tiered_engine": {"status": "disabled", "message": None},
    }
    if not engine.ready:
        return JSONResponse(
            {"ready": False, "version": API_VERSION, "starting": True, "reason": "loading"},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    return JSONResponse({"ready": True, "version": API_VERSION, "checks": checks})


@routes.get("/health/live", scope=Scope.PUBLIC)
async def health_live(engine: EngineDep) -> dict[str, Any]:
    return {
        "alive": True,
        "version": API_VERSION,
        "uptime_seconds": int(time.time() - engine.started_at),
        "starting": not engine.ready,
    }


@routes.get("/v1/capabilities", scope=Scope.READ)
async def capabilities(engine: EngineDep) -> dict[str, Any]:
    model = engine.embedder
    return {
        "capabilities_version": 2,
        "server_version": API_VERSION,
        "api_versions": ["v1"],
        "default_model": model.model_name,
        "models": [
            {
                "name": model.model_name,
                "aliases": ["minilm"] if model.model_name == "all-MiniLM-L6-v2" else [],
                "dimension": model.dimension,
                "max_seq_length": model.max_tokens,
                "effective_max_seq_length": model.max_tokens,
                "active": True,
                "modality": "text",
            }
        ],
        "distance_metrics": ["cosine", "euclidean", "dot_product"],
        "search_mode": "hybrid",
        "fulltext_language": "en",
        "query_languages": ["en"],
        **file_capabilities(engine),
        "naming": {
            "agent_id_pattern": AGENT_ID_PATTERN.pattern,
            "agent_id_max_bytes": AGENT_ID_MAX_BYTES,
            "session_id_pattern": SESSION_ID_PATTERN.pattern,
            "session_id_max_bytes": SESSION_ID_MAX_BYTES,
            "agent_namespace_prefix": "_dakera_agent_",
            "namespace_pattern": NAMESPACE_PATTERN.pattern,
            "namespace_max_bytes": NAMESPACE_MAX_BYTES,
        },
        "sessions": {
            "idle_timeout_secs": engine.sessions.idle_timeout_secs,
            "max_idle_timeout_secs": 2_592_000,
            "touch": True,
            "ended_reason": True,
        },
    }


@routes.get("/v1/auth/whoami", scope=Scope.READ)
async def whoami(caller: CallerDep) -> dict[str, Any]:
    return {
        "key_id": caller.key_id,
        "name": caller.name,
        "scope": caller.scope.wire,
        "namespaces": None if caller.namespaces is None else list(caller.namespaces),
        "unrestricted": caller.unrestricted,
        "expires_at": caller.expires_at,
        "grants_version": 1,
        "inert_namespaces": [],
        "auth_enabled": caller.auth_enabled,
    }
