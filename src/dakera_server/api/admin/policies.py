"""Memory lifecycle policy routes (dakera-api.md §4.5): the whole policy object, per namespace."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body

from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.scopes import Routes, Scope

routes = Routes()


@routes.get("/v1/namespaces/{namespace}/memory_policy", scope=Scope.READ)
def get_memory_policy(namespace: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    return engine.policies.get(caller, namespace).to_wire()


@routes.put("/v1/namespaces/{namespace}/memory_policy", scope=Scope.ADMIN)
def set_memory_policy(
    namespace: str, engine: EngineDep, caller: CallerDep, body: Annotated[Any, Body()] = None
) -> dict[str, Any]:
    return engine.policies.put(caller, namespace, body).to_wire()
