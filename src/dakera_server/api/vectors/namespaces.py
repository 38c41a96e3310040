"""Namespace routes (dakera-api.md §3.2, security.md): list, create, get, configure, delete,
and the admin forms under ``/v1/admin/namespaces`` (also served under ``/admin/namespaces``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.scopes import Routes, Scope
from dakera_server.api.vectors.models import (
    AdminCreateNamespaceRequest,
    ConfigureNamespaceRequest,
    CreateNamespaceRequest,
)

routes = Routes()


@routes.get("/v1/namespaces", scope=Scope.READ)
def list_namespaces(engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    kinds = engine.namespaces.names(caller)
    return {"namespaces": list(kinds), "kinds": kinds}


@routes.post("/v1/namespaces", scope=Scope.WRITE)
def create_namespace(
    body: CreateNamespaceRequest, engine: EngineDep, caller: CallerDep, response: Response
) -> dict[str, Any]:
    view, created = engine.namespaces.create(
        caller,
        body.name if body.name is not None else body.namespace,
        dimension=body.dimension if body.dimension is not None else body.dimensions,
        distance=body.distance,
    )
    response.status_code = 201 if created else 200
    return {**view.to_wire(), "created": created}


@routes.get("/v1/namespaces/{namespace}", scope=Scope.READ)
def get_namespace(namespace: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    return engine.namespaces.describe(caller, namespace).to_wire()


@routes.put("/v1/namespaces/{namespace}", scope=Scope.WRITE)
def configure_namespace(
    namespace: str, body: ConfigureNamespaceRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    view, created = engine.namespaces.configure(caller, namespace, body.dimension, body.distance)
    return {**view.to_wire(), "created": created}


@routes.delete("/v1/namespaces/{namespace}", scope=Scope.ADMIN)
def delete_namespace(namespace: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    count = engine.namespaces.delete(caller, namespace)
    return {"namespace": namespace, "deleted": True, "vectors_deleted": count}


@routes.get("/v1/admin/namespaces", scope=Scope.ADMIN)
def admin_list_namespaces(engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    views = engine.namespaces.describe_all(caller)
    return {
        "namespaces": [view.to_wire() for view in views],
        "kinds": {view.name: view.kind for view in views},
        "count": len(views),
    }


@routes.post("/v1/admin/namespaces", scope=Scope.ADMIN)
def admin_create_namespace(
    body: AdminCreateNamespaceRequest, engine: EngineDep, caller: CallerDep, response: Response
) -> dict[str, Any]:
    config = body.config
    view, created = engine.namespaces.create(
        caller,
        body.name,
        dimension=body.dimension if body.dimension is not None else config.dimension,
        distance=body.distance if body.distance is not None else config.distance,
        index_type=config.vector_index,
        encryption=False if config.encryption is None else config.encryption,
        dimension_required=False,
    )
    response.status_code = 201 if created else 200
    return {**view.to_wire(), "created": created}


@routes.delete("/v1/admin/namespaces/{namespace}", scope=Scope.ADMIN)
def admin_delete_namespace(namespace: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    count = engine.namespaces.delete(caller, namespace)
    return {"namespace": namespace, "deleted": True, "vectors_deleted": count}
