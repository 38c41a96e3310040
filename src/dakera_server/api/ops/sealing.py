"""Encryption extras of tier 3 (super_admin): re-seal every record under the active key, and
the master-key revocation route.

This server keeps exactly one master key: a rotation re-encrypts every record under the new key
in one transaction (``security/encryption.py``), so no retired key is ever still needed. A
re-seal rewrites every record under the active key with fresh nonces; revoking the active key
is refused (rotate first) and any other key id is unknown, because none is kept.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request

from dakera_server.api.scopes import Routes, Scope
from dakera_server.errors import Conflict, NotFound

routes = Routes()


@routes.post("/v1/admin/encryption/reseal", scope=Scope.SUPER_ADMIN, unrestricted=True)
def reseal_encryption(request: Request) -> dict[str, Any]:
    rotation = request.app.state.rotation
    key = rotation.current_key()  # 400 when encryption at rest is off
    started = time.monotonic()
    resealed = rotation.store.reencode(rotation.store.codec)
    return {
        "reseal": "completed",
        "resealed": resealed,
        "key_id": key.key_id,
        "elapsed_ms": int((time.monotonic() - started) * 1000),
    }


@routes.post(
    "/v1/admin/encryption/keys/{key_id}/revoke-master", scope=Scope.SUPER_ADMIN, unrestricted=True
)
def revoke_master_key(key_id: str, request: Request) -> dict[str, Any]:
    key = request.app.state.rotation.current_key()
    if key_id == key.key_id:
        raise Conflict(
            "the active master key cannot be revoked: rotate to a new key first "
            "(POST /v1/admin/encryption/rotate-key)"
        )
    raise NotFound(
        f"no master key '{key_id}' is kept: a rotation re-encrypts every record at once, so "
        "earlier keys are never needed again",
        resource="master_key",
    )
