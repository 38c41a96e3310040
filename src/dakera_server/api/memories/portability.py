"""Import and export routes (dakera-api.md §4.7): ``POST /v1/import``, its job status, and
``GET /v1/export`` answering the file itself.

The import body is not checked by the input validation layer as a whole (one bad row must
not refuse the file): every row goes through the same field checks here, one by one
(``RequestValidator.check_document``), and a refused row is reported with its number.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.memories.uploads import read_upload
from dakera_server.api.scopes import Routes, Scope
from dakera_server.engine.portability.exports import export_memories as export_file
from dakera_server.security.validation import RequestValidator

routes = Routes()
ROW_VALIDATOR = RequestValidator()


def check_row(record: dict[str, Any]) -> None:
    """The validation layer's checks for one import row (ids, tags, metadata, detectors)."""
    ROW_VALIDATOR.check_document(record, None)


@routes.post("/v1/import", scope=Scope.WRITE)
async def import_memories(
    request: Request,
    engine: EngineDep,
    caller: CallerDep,
    agent_id: str | None = None,
    format: str | None = None,
    conflict: str | None = None,
) -> dict[str, Any]:
    upload = read_upload(await request.body(), request.headers.get("content-type", ""))
    options = upload.options
    job = await asyncio.to_thread(
        engine.portability.imports.start,
        caller,
        agent_id or options.get("agent_id"),
        upload.data,
        fmt=format or options.get("format"),
        conflict=conflict or options.get("conflict"),
        check_row=check_row,
    )
    return job.to_wire()


@routes.get("/v1/import/{job_id}/status", scope=Scope.READ)
def import_job_status(job_id: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    return engine.portability.imports.status(caller, job_id).to_wire()


@routes.get("/v1/export", scope=Scope.READ)
def export_memories(
    engine: EngineDep, caller: CallerDep, agent_id: str | None = None, format: str = "jsonl"
) -> StreamingResponse:
    export = export_file(engine.memories, engine.events, caller, agent_id, format)
    extension = {"jsonl": "jsonl", "csv": "csv"}.get(export.format, "json")
    return StreamingResponse(
        export.chunks,
        media_type=export.media_type,
        headers={
            "x-dakera-export-skipped": "0",
            "x-dakera-export-count": str(export.count),
            "Content-Disposition": f'attachment; filename="memories.{extension}"',
        },
    )
