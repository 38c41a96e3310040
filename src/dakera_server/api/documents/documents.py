"""Document import routes (dakera-api.md §5.1, v0.12.3): import as a job, job status, list,
detail, delete."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from urllib.parse import quote

from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.documents.models import (
    DocumentOptions,
    ImportAttachmentDocumentRequest,
    ImportDocumentRequest,
    memory_fields,
)
from dakera_server.api.scopes import Routes, Scope
from dakera_server.engine.documents.importer import ImportRequest
from dakera_server.engine.tasks.runner import Task

routes = Routes()
IMPORT_PATH = "/v1/memory/documents"
# The import's ``content`` is a document (HTML, Markdown, code samples): the input validation
# layer checks every other field of the body, not this one (it is parsed, never served).
FILE_FIELDS = (("POST", IMPORT_PATH, "content"),)


def _request(body: DocumentOptions, agent_id: str, **extra: Any) -> ImportRequest:
    return ImportRequest(
        agent_id=agent_id,
        fields=memory_fields(body),
        chunking=None if body.chunking is None else body.chunking.model_dump(exclude_none=True),
        decompose=body.decompose,
        **extra,
    )


def _accepted(task: Task) -> dict[str, Any]:
    agent = task.metadata["agent_id"]
    return {
        "job_id": task.id,
        "document_id": task.metadata["document_id"],
        "agent_id": agent,
        "status_url": f"/v1/memory/documents/jobs/{task.id}?agent_id={quote(agent)}",
    }


@routes.post(IMPORT_PATH, scope=Scope.WRITE, status_code=202)
def import_document(
    body: ImportDocumentRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    request = _request(
        body,
        body.agent_id,
        data=body.content.encode("utf-8"),
        media_type=body.media_type or "text/plain",
        title=body.title,
        document_id=body.document_id,
    )
    return _accepted(engine.documents.submit(caller, request, text_only=True))


@routes.post(
    "/v1/namespaces/{namespace}/attachments/{attachment_ref}/document",
    scope=Scope.WRITE,
    status_code=202,
)
def import_attachment_document(
    namespace: str,
    attachment_ref: str,
    body: ImportAttachmentDocumentRequest,
    engine: EngineDep,
    caller: CallerDep,
) -> dict[str, Any]:
    request = _request(
        body,
        body.agent_id,
        data=b"",
        media_type="",
        title=body.title,
        document_id=body.document_id,
    )
    task = engine.documents.submit_attachment(caller, namespace, attachment_ref, request)
    return _accepted(task)


@routes.get("/v1/memory/documents/jobs/{job_id}", scope=Scope.READ)
def get_document_job(
    job_id: str, engine: EngineDep, caller: CallerDep, agent_id: str | None = None
) -> dict[str, Any]:
    return engine.documents.job(caller, job_id, agent_id).to_wire()


@routes.get("/v1/memory/documents", scope=Scope.READ)
def list_documents(
    agent_id: str,
    engine: EngineDep,
    caller: CallerDep,
    cursor: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    page, next_cursor = engine.documents.list(caller, agent_id, cursor, limit)
    return {"documents": [r.summary() for r in page], "next_cursor": next_cursor}


@routes.get("/v1/memory/documents/{document_id}", scope=Scope.READ)
def get_document(
    document_id: str, agent_id: str, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    record = engine.documents.get(caller, agent_id, document_id)
    return {
        "document": record.summary(),
        "chunks": [asdict(entry) for entry in record.chunks],
    }


@routes.delete("/v1/memory/documents/{document_id}", scope=Scope.WRITE)
def delete_document(
    document_id: str, agent_id: str, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    deleted = engine.documents.delete(caller, agent_id, document_id)
    return {"document_id": document_id, "deleted_chunks": deleted}
