"""Analytics, KPIs and semantic routing (dakera-api.md §4.11, §4.13 ``POST /v1/route``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Query

from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.scopes import Routes, Scope

routes = Routes()

Period = Annotated[str | None, Query(max_length=16)]
Namespace = Annotated[str | None, Query(max_length=255)]


@routes.get("/v1/analytics/overview", scope=Scope.ADMIN, unrestricted=True)
def analytics_overview(
    engine: EngineDep, period: Period = None, namespace: Namespace = None
) -> dict[str, Any]:
    return engine.ops.analytics.overview(period, namespace)


@routes.get("/v1/analytics/latency", scope=Scope.ADMIN, unrestricted=True)
def analytics_latency(
    engine: EngineDep, period: Period = None, namespace: Namespace = None
) -> dict[str, Any]:
    return engine.ops.analytics.latency(period, namespace)


@routes.get("/v1/analytics/throughput", scope=Scope.ADMIN, unrestricted=True)
def analytics_throughput(
    engine: EngineDep, period: Period = None, namespace: Namespace = None
) -> dict[str, Any]:
    return engine.ops.analytics.throughput(period, namespace)


@routes.get("/v1/analytics/storage", scope=Scope.ADMIN, unrestricted=True)
def analytics_storage(engine: EngineDep, namespace: Namespace = None) -> dict[str, Any]:
    return engine.ops.analytics.storage(namespace)


@routes.get("/v1/kpis", scope=Scope.ADMIN, unrestricted=True)
def get_kpis(engine: EngineDep) -> dict[str, Any]:
    return engine.ops.analytics.kpis()


@routes.post("/v1/route", scope=Scope.READ)
def route_query(
    engine: EngineDep, caller: CallerDep, body: Annotated[Any, Body()] = None
) -> dict[str, Any]:
    fields = body if isinstance(body, dict) else {}
    return engine.ops.router.route(
        caller,
        fields.get("query"),
        top_k=fields.get("top_k"),
        min_similarity=fields.get("min_similarity"),
        model=fields.get("model"),
    )
