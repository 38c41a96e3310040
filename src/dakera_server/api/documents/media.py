"""Transcription and image-index job routes (dakera-api.md §5.1): start (202) and status."""

from __future__ import annotations

from typing import Any

from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.documents.models import MediaJobRequest
from dakera_server.api.scopes import Routes, Scope

routes = Routes()
BASE = "/v1/namespaces/{namespace}/attachments/{attachment_ref}"


def _body(body: MediaJobRequest) -> dict[str, Any]:
    return body.model_dump(exclude_none=True)


@routes.post(BASE + "/transcribe", scope=Scope.WRITE, status_code=202)
def transcribe_attachment(
    namespace: str, attachment_ref: str, body: MediaJobRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    return engine.media.submit(caller, "transcribe", namespace, attachment_ref, _body(body))


@routes.get(BASE + "/transcribe/{job_id}", scope=Scope.READ)
def get_transcription_job(
    namespace: str, attachment_ref: str, job_id: str, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    task = engine.media.job(caller, "transcribe", namespace, attachment_ref, job_id)
    return task.to_wire()


@routes.post(BASE + "/index", scope=Scope.WRITE, status_code=202)
def index_attachment(
    namespace: str, attachment_ref: str, body: MediaJobRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    return engine.media.submit(caller, "index", namespace, attachment_ref, _body(body))


@routes.get(BASE + "/index/{job_id}", scope=Scope.READ)
def get_index_job(
    namespace: str, attachment_ref: str, job_id: str, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    task = engine.media.job(caller, "index", namespace, attachment_ref, job_id)
    return task.to_wire()
