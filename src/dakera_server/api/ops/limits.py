"""Quotas, the slow-query log and runtime configuration (dakera-api.md §5)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Query

from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.scopes import Routes, Scope
from dakera_server.engine.ops.quotas import check_quota_namespace
from dakera_server.errors import InvalidInput

routes = Routes()

AnyBody = Annotated[Any, Body()]


def _fields(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    return body


# ------------------------------------------------------------------------- quotas
@routes.get("/v1/admin/quotas", scope=Scope.ADMIN, unrestricted=True)
def get_quotas(engine: EngineDep) -> dict[str, Any]:
    return engine.ops.quotas.list()


@routes.get("/v1/admin/quotas/default", scope=Scope.ADMIN, unrestricted=True)
def admin_get_default_quota(engine: EngineDep) -> dict[str, Any]:
    default = engine.ops.quotas.default
    return {
        "namespace": "_default",
        "config": None if default is None else default.to_wire(),
        "enabled": default is not None,
    }


@routes.put("/v1/admin/quotas/default", scope=Scope.ADMIN, unrestricted=True)
def admin_set_default_quota(engine: EngineDep, body: AnyBody = None) -> dict[str, Any]:
    config = engine.ops.quotas.set_default(body)
    return {
        "success": True,
        "namespace": "_default",
        "config": None if config is None else config.to_wire(),
        "message": "default quota removed"
        if config is None
        else "default quota set; it applies to every namespace without its own",
    }


@routes.get("/v1/admin/quotas/{namespace}", scope=Scope.ADMIN, unrestricted=True)
def admin_get_quota(namespace: str, engine: EngineDep) -> dict[str, Any]:
    return engine.ops.quotas.status(check_quota_namespace(namespace))


@routes.put("/v1/admin/quotas/{namespace}", scope=Scope.ADMIN, unrestricted=True)
def admin_set_quota(namespace: str, engine: EngineDep, body: AnyBody = None) -> dict[str, Any]:
    config = engine.ops.quotas.set(namespace, body)
    return {
        "success": True,
        "namespace": namespace,
        "config": config.to_wire(),
        "message": f"quota of '{namespace}' set",
        "status": engine.ops.quotas.status(namespace),
    }


@routes.delete("/v1/admin/quotas/{namespace}", scope=Scope.ADMIN, unrestricted=True)
def admin_delete_quota(namespace: str, engine: EngineDep) -> dict[str, Any]:
    engine.ops.quotas.delete(check_quota_namespace(namespace))
    return {"success": True, "namespace": namespace, "deleted": True}


@routes.post("/v1/admin/quotas/{namespace}/check", scope=Scope.ADMIN, unrestricted=True)
def admin_check_quota(namespace: str, engine: EngineDep, body: AnyBody = None) -> dict[str, Any]:
    fields = _fields(body)
    return engine.ops.quotas.check(
        check_quota_namespace(namespace),
        fields.get("vector_ids"),
        fields.get("dimensions"),
        fields.get("metadata_bytes"),
    )


# ------------------------------------------------------------------- slow queries
@routes.get("/v1/admin/slow-queries", scope=Scope.ADMIN, unrestricted=True)
def slow_queries(
    engine: EngineDep,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    min_duration_ms: Annotated[float | None, Query(ge=0)] = None,
    namespace: Annotated[str | None, Query(max_length=255)] = None,
    query_type: Annotated[str | None, Query(max_length=64)] = None,
) -> list[dict[str, Any]]:
    entries = engine.ops.slowlog.entries(
        namespace=namespace, query_type=query_type, min_duration_ms=min_duration_ms, limit=limit
    )
    return [entry.to_wire() for entry in entries]


@routes.get("/v1/admin/slow-queries/summary", scope=Scope.ADMIN, unrestricted=True)
def admin_slow_query_summary(engine: EngineDep) -> dict[str, Any]:
    return engine.ops.slowlog.summary()


@routes.delete("/v1/admin/slow-queries", scope=Scope.ADMIN, unrestricted=True)
def admin_clear_slow_queries(
    engine: EngineDep, namespace: Annotated[str | None, Query(max_length=255)] = None
) -> dict[str, Any]:
    return {"success": True, "cleared": engine.ops.slowlog.clear(namespace)}


@routes.patch("/v1/admin/slow-queries/config", scope=Scope.ADMIN, unrestricted=True)
def admin_update_slow_query_config(
    engine: EngineDep, caller: CallerDep, body: AnyBody = None
) -> dict[str, Any]:
    names = {
        "threshold_ms": "slow_query_threshold_ms",
        "max_entries": "slow_query_max_entries",
        "enabled": "slow_query_log_enabled",
    }
    fields = _fields(body)
    unknown = sorted(set(fields) - set(names))
    if unknown or not fields:
        raise InvalidInput(
            f"send one or more of {', '.join(names)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    engine.ops.runtime.update({names[k]: v for k, v in fields.items()}, actor=caller.key_id)
    return {"success": True, **engine.ops.slowlog.config()}


# ----------------------------------------------------------------- runtime config
def _config_answer(engine: Any) -> dict[str, Any]:
    settings = engine.settings
    return {
        **engine.ops.runtime.current(),
        "changeable": engine.ops.runtime.describe(),
        "default_index_type": "hnsw",
        "cache_enabled": False,
        "cache_max_size_bytes": 0,
        "rate_limit_enabled": settings.rate_limit_rps > 0,
        "rate_limit_rps": settings.rate_limit_rps,
        "query_timeout_ms": 0,
        "max_vectors_per_namespace": None,
    }


@routes.get("/v1/admin/config", scope=Scope.ADMIN, unrestricted=True)
def get_config(engine: EngineDep) -> dict[str, Any]:
    return _config_answer(engine)


@routes.put("/v1/admin/config", scope=Scope.ADMIN, unrestricted=True)
def update_config(engine: EngineDep, caller: CallerDep, body: AnyBody = None) -> dict[str, Any]:
    changed = engine.ops.runtime.update(body, actor=caller.key_id)
    return {
        "success": True,
        "changed": changed,
        "config": _config_answer(engine),
        "message": f"{len(changed)} setting(s) changed; they apply now and survive a restart",
    }
