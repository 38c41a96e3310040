"""API key routes: ``/admin/keys`` (super_admin, §3.11) and ``/v1/namespaces/{ns}/keys`` (§4.10).

Create bodies are strict (unknown fields → 422). ``POST /admin/keys`` also takes the security
document's singular ``namespace`` as an alias of ``namespaces: [namespace]``. Keys are named in
URLs by their id (``dk_key_…``), never by their secret; no answer but create and rotate ever
carries a secret.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.scopes import Routes, Scope
from dakera_server.engine.keys.records import NewKey
from dakera_server.engine.keys.rules import CREATE_WARNING
from dakera_server.errors import InvalidInput

routes = Routes()


class Strict(BaseModel):
    """Refuses unknown fields (dakera-api.md §1.14)."""

    model_config = ConfigDict(extra="forbid")


class CreateKeyRequest(Strict):
    name: Any = None
    scope: Any = None
    namespaces: Any = None
    namespace: Any = None
    expires_in_days: Any = None


class CreateNamespaceKeyRequest(Strict):
    name: Any = None
    scope: Any = "read"
    extra_namespaces: Any = None
    expires_in_days: Any = None


class UpdateKeyRequest(BaseModel):
    name: Any = None
    namespaces: Any = None


class RotateKeyRequest(BaseModel):
    grace_secs: Any = None


def _created(new: NewKey) -> dict[str, Any]:
    record = new.record
    return {
        "key_id": record.key_id,
        "key": new.secret,
        "name": record.name,
        "scope": record.scope.wire,
        "namespaces": None if record.namespaces is None else list(record.namespaces),
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "warning": CREATE_WARNING,
    }


def _changes(body: UpdateKeyRequest) -> dict[str, Any]:
    return {name: getattr(body, name) for name in body.model_fields_set}


@routes.post("/admin/keys", scope=Scope.SUPER_ADMIN, unrestricted=True, status_code=201)
def create_key(body: CreateKeyRequest, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    namespaces = body.namespaces
    if body.namespace is not None:
        if namespaces is not None:
            raise InvalidInput("give either 'namespace' or 'namespaces', not both")
        namespaces = [body.namespace]
    new = engine.keys.create(
        caller,
        name=body.name,
        scope=body.scope,
        namespaces=namespaces,
        expires_in_days=body.expires_in_days,
    )
    return _created(new)


@routes.get("/admin/keys", scope=Scope.SUPER_ADMIN)
def list_keys(engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    now = engine.keys.now()
    keys = [r.to_wire(now) for r in engine.keys.list_keys(caller)]
    return {"keys": keys, "total": len(keys)}


@routes.get("/admin/keys/{key_id}", scope=Scope.SUPER_ADMIN)
def get_key(key_id: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    return engine.keys.describe(caller, key_id)


@routes.patch("/admin/keys/{key_id}", scope=Scope.SUPER_ADMIN, unrestricted=True)
def update_key(
    key_id: str, body: UpdateKeyRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    return engine.keys.update(caller, key_id, _changes(body)).to_wire(engine.keys.now())


@routes.delete("/admin/keys/{key_id}", scope=Scope.SUPER_ADMIN, unrestricted=True)
def delete_key(key_id: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    engine.keys.delete(caller, key_id)
    return {"success": True, "key_id": key_id, "deleted": True, "message": "API key deleted"}


@routes.post("/admin/keys/{key_id}/deactivate", scope=Scope.SUPER_ADMIN, unrestricted=True)
def deactivate_key(key_id: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    engine.keys.deactivate(caller, key_id)
    return {"success": True, "key_id": key_id, "active": False}


@routes.post("/admin/keys/{key_id}/rotate", scope=Scope.SUPER_ADMIN, unrestricted=True)
def rotate_key(
    key_id: str, engine: EngineDep, caller: CallerDep, body: RotateKeyRequest | None = None
) -> dict[str, Any]:
    new, old = engine.keys.rotate(caller, key_id, None if body is None else body.grace_secs)
    return {
        "new_key": new.secret,
        "key": new.secret,  # the dk CLI reads `key` (dakera-api.md §12.2)
        "key_id": new.record.key_id,
        "warning": CREATE_WARNING,
        "old_key_id": old.key_id,
        "old_key_expires_at": old.active_until,
    }


@routes.get("/admin/keys/{key_id}/usage", scope=Scope.SUPER_ADMIN)
def key_usage(key_id: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    return engine.keys.usage_of(caller, key_id)


@routes.post("/v1/namespaces/{namespace}/keys", scope=Scope.ADMIN, status_code=201)
def create_namespace_key(
    namespace: str, body: CreateNamespaceKeyRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    new = engine.keys.create_for_namespace(
        caller,
        namespace,
        name=body.name,
        scope=body.scope,
        extra_namespaces=body.extra_namespaces,
        expires_in_days=body.expires_in_days,
    )
    return _created(new)


@routes.get("/v1/namespaces/{namespace}/keys", scope=Scope.ADMIN)
def list_namespace_keys(namespace: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    now = engine.keys.now()
    keys = [r.to_wire(now) for r in engine.keys.list_keys(caller, namespace)]
    return {"namespace": namespace, "keys": keys, "total": len(keys)}


@routes.patch("/v1/namespaces/{namespace}/keys/{key_id}", scope=Scope.ADMIN)
def update_namespace_key(
    namespace: str, key_id: str, body: UpdateKeyRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    updated = engine.keys.update(caller, key_id, _changes(body), namespace)
    return updated.to_wire(engine.keys.now())


@routes.delete("/v1/namespaces/{namespace}/keys/{key_id}", scope=Scope.ADMIN)
def delete_namespace_key(
    namespace: str, key_id: str, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    engine.keys.delete(caller, key_id, namespace)
    return {"success": True, "key_id": key_id, "message": f"API key '{key_id}' revoked"}


@routes.get("/v1/namespaces/{namespace}/keys/{key_id}/usage", scope=Scope.ADMIN)
def namespace_key_usage(
    namespace: str, key_id: str, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    return engine.keys.usage_of(caller, key_id, namespace)
