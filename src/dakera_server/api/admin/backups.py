"""Backup routes (dakera-api.md §5, routes.tsv): create, list, get, delete, download, upload,
verify, schedule, restore and restore status.

Every route needs a global (unrestricted) admin key: a backup holds every tenant's data, so a
namespace-scoped admin may neither read nor make one. Restore needs a global super_admin.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import IO, Annotated, Any

from fastapi import Body
from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import StreamingResponse

from dakera_server.api.deps import EngineDep
from dakera_server.api.scopes import Routes, Scope
from dakera_server.errors import InvalidInput

routes = Routes()
UPLOAD_SPOOL_BYTES = 8 * 1024 * 1024


class CreateBackupRequest(BaseModel):
    """The SDK's strict ``CreateBackupRequest``: unknown fields (``include_data``) are a 422."""

    model_config = ConfigDict(extra="forbid")
    name: str
    backup_type: str | None = None
    namespaces: list[str] | None = None
    encrypt: bool | None = None
    compression: str | None = None


class RestoreRequest(BaseModel):
    """``{"backup_id","target_namespaces"?,"overwrite"?,"point_in_time"?,"dry_run"?}``."""

    backup_id: str
    target_namespaces: list[str] | None = None
    overwrite: bool | None = None
    point_in_time: int | None = None
    dry_run: bool | None = None


@routes.get("/v1/admin/backups", scope=Scope.ADMIN, unrestricted=True)
def list_backups(engine: EngineDep) -> dict[str, Any]:
    backups = [r.to_wire() for r in engine.portability.backups.all()]
    return {"backups": backups, "total": len(backups)}


@routes.post("/v1/admin/backups", scope=Scope.ADMIN, unrestricted=True)
def create_backup(body: CreateBackupRequest, engine: EngineDep) -> dict[str, Any]:
    record = engine.portability.backups.create(
        body.name,
        namespaces=body.namespaces,
        compression=body.compression,
        backup_type=body.backup_type,
        encrypt=body.encrypt,
    )
    return record.to_wire()


@routes.get("/v1/admin/backups/schedule", scope=Scope.ADMIN, unrestricted=True)
def admin_get_backup_schedule(engine: EngineDep) -> dict[str, Any]:
    return engine.portability.schedule.schedule.to_wire()


@routes.post("/v1/admin/backups/schedule", scope=Scope.ADMIN, unrestricted=True)
def admin_update_backup_schedule(
    engine: EngineDep, body: Annotated[Any, Body()] = None
) -> dict[str, Any]:
    return engine.portability.schedule.update({} if body is None else body).to_wire()


@routes.post("/v1/admin/backups/upload", scope=Scope.ADMIN, unrestricted=True)
async def upload_backup(request: Request, engine: EngineDep) -> dict[str, Any]:
    # Spooled to disk as it arrives: a backup can be far larger than memory should hold.
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=UPLOAD_SPOOL_BYTES)
    try:
        async for chunk in request.stream():
            spool.write(chunk)
        if spool.tell() == 0:
            raise InvalidInput("the upload is empty: send the backup as an application/gzip body")

        def copy(out: IO[bytes]) -> None:
            spool.seek(0)
            while block := spool.read(1024 * 1024):
                out.write(block)

        record = await asyncio.to_thread(engine.portability.backups.receive, copy)
    finally:
        spool.close()
    return {"backup_id": record.backup_id, "status": "completed", "backup": record.to_wire()}


@routes.post("/v1/admin/backups/restore", scope=Scope.SUPER_ADMIN, unrestricted=True)
def restore_backup(body: RestoreRequest, engine: EngineDep) -> dict[str, Any]:
    job = engine.portability.restores.start(
        body.backup_id,
        target_namespaces=body.target_namespaces,
        overwrite=body.overwrite,
        dry_run=body.dry_run,
        point_in_time=body.point_in_time,
    )
    return job.to_wire()


@routes.get("/v1/admin/backups/restore/{restore_id}", scope=Scope.ADMIN, unrestricted=True)
def admin_get_restore_status(restore_id: str, engine: EngineDep) -> dict[str, Any]:
    return engine.portability.restores.status(restore_id).to_wire()


@routes.get("/v1/admin/backups/{backup_id}", scope=Scope.ADMIN, unrestricted=True)
def admin_get_backup(backup_id: str, engine: EngineDep) -> dict[str, Any]:
    return engine.portability.backups.get(backup_id).to_wire()


@routes.delete("/v1/admin/backups/{backup_id}", scope=Scope.ADMIN, unrestricted=True)
def delete_backup(backup_id: str, engine: EngineDep) -> dict[str, Any]:
    engine.portability.backups.delete(backup_id)
    return {"deleted": True, "backup_id": backup_id}


@routes.post("/v1/admin/backups/{backup_id}/verify", scope=Scope.ADMIN, unrestricted=True)
def verify_backup(backup_id: str, engine: EngineDep) -> dict[str, Any]:
    verified = engine.portability.backups.verify(backup_id)
    return {
        "backup_id": backup_id,
        "valid": True,
        "format_version": verified.header.format_version,
        "server_version": verified.header.server_version,
        "created_at": verified.header.created_at,
        "encrypted": verified.header.sealed,
        "sha256": verified.sha256,
        "size_bytes": verified.size,
        "counts": verified.counts,
    }


@routes.get("/v1/admin/backups/{backup_id}/download", scope=Scope.ADMIN, unrestricted=True)
def download_backup(backup_id: str, engine: EngineDep) -> StreamingResponse:
    chunks = engine.portability.backups.download(backup_id)
    name = os.path.basename(f"{backup_id}.dkbak.gz")
    return StreamingResponse(
        chunks,
        media_type="application/gzip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
