"""Encryption key rotation (dakera-api.md §4.12 and the security document's form)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from dakera_server.api.scopes import Routes, Scope
from dakera_server.errors import InvalidInput
from dakera_server.security.encryption import Rotation

routes = Routes()


class RotateKeyRequest(BaseModel):
    """The SDK's strict form: unknown fields (e.g. ``old_key``) are a 422."""

    model_config = ConfigDict(extra="forbid")
    new_key: str | None = Field(default=None, repr=False)
    namespace: str | None = None
    wait_secs: int | None = None


class SeedRotateRequest(BaseModel):
    """The security document's form: ``{"old_key", "new_key"}``."""

    old_key: str = Field(repr=False)
    new_key: str = Field(repr=False)


def _rotation(request: Request) -> Rotation:
    rotation: Rotation = request.app.state.rotation
    return rotation


@routes.post("/v1/admin/encryption/rotate-key", scope=Scope.SUPER_ADMIN, unrestricted=True)
def rotate_encryption_key(body: RotateKeyRequest, request: Request) -> dict[str, Any]:
    if body.namespace is not None:
        raise InvalidInput(
            "per-namespace rotation is not supported: one key encrypts the whole data directory"
        )
    return _rotation(request).rotate(body.new_key)


@routes.post("/v1/admin/encryption/rotate", scope=Scope.SUPER_ADMIN, unrestricted=True)
def rotate_encryption_seed_form(body: SeedRotateRequest, request: Request) -> dict[str, Any]:
    rotation = _rotation(request)
    rotation.verify_old(body.old_key)
    return rotation.rotate(body.new_key)


@routes.get("/v1/admin/encryption/status", scope=Scope.SUPER_ADMIN, unrestricted=True)
def encryption_status(request: Request) -> dict[str, Any]:
    rotation = _rotation(request)
    return {"enabled": rotation.enabled, **rotation.state.to_wire()}
