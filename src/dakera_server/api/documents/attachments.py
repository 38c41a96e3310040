"""Attachment routes (dakera-api.md §5.1): upload, list, download, delete.

The upload body is the file itself, streamed to the engine as it arrives (the input
validation layer passes it through unread; its size limit is ``DAKERA_MAX_ATTACHMENT_BYTES``).
A download streams the stored bytes back with the stored ``Content-Type``, ``ETag`` (the
SHA-256), and headers that stop a browser from running what it gets: ``Content-Disposition:
attachment``, ``nosniff`` and a sandboxing CSP.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.scopes import Routes, Scope
from dakera_server.errors import InvalidInput

__all__ = ["RAW_BODY_ROUTES", "UPLOAD_PATH", "routes"]

routes = Routes()
UPLOAD_PATH = "/v1/namespaces/{namespace}/attachments"
RAW_BODY_ROUTES = (("POST", UPLOAD_PATH),)
WRITE_BATCH = 1 << 20  # hand the engine ~1 MiB at a time (one thread hop per MiB)


def _digest(header: str | None) -> str | None:
    """The SHA-256 of an RFC 9530 ``Content-Digest: sha-256=:<base64>:`` header, as hex."""
    if not header:
        return None
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name.strip().lower() == "sha-256":
            try:
                raw = base64.b64decode(value.strip().strip(":"), validate=True)
            except (binascii.Error, ValueError):
                raise InvalidInput("the Content-Digest header is malformed") from None
            if len(raw) != 32:
                raise InvalidInput("the Content-Digest sha-256 value is not 32 bytes")
            return raw.hex()
    return None


def _length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


@routes.post(UPLOAD_PATH, scope=Scope.WRITE, status_code=201)
async def upload_attachment(
    namespace: str,
    request: Request,
    engine: EngineDep,
    caller: CallerDep,
    filename: str | None = None,
) -> Response:
    upload = engine.attachments.begin(
        caller,
        namespace,
        request.headers.get("content-type"),
        filename=filename,
        expected_sha256=_digest(request.headers.get("content-digest")),
        declared_length=_length(request),
    )
    with upload:
        pending = bytearray()
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= WRITE_BATCH:
                await run_in_threadpool(upload.write, bytes(pending))
                pending.clear()
        await run_in_threadpool(upload.write, bytes(pending))
        attachment, created = await run_in_threadpool(upload.finish)
    answer = {**attachment.to_wire(), "created": created}
    return JSONResponse(answer, status_code=201 if created else 200)


@routes.get(UPLOAD_PATH, scope=Scope.READ)
def list_attachments(namespace: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    found = engine.attachments.list(caller, namespace)
    return {"attachments": [a.to_wire() for a in found]}


@routes.get(UPLOAD_PATH + "/{attachment_ref}", scope=Scope.READ)
def download_attachment(
    namespace: str, attachment_ref: str, request: Request, engine: EngineDep, caller: CallerDep
) -> Response:
    attachment = engine.attachments.get(caller, namespace, attachment_ref)
    etag = f'"{attachment.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "private, no-cache",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Content-Disposition": _disposition(attachment.filename, attachment.sha256),
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    chunks = engine.attachments.stream(attachment)
    # The first record is read (and authenticated) before the answer starts, so a tampered
    # file is a clean error; later records fail the connection (Content-Length tells).
    first = next(chunks, b"")
    headers["Content-Type"] = attachment.content_type
    headers["Content-Length"] = str(attachment.size)
    return StreamingResponse(itertools.chain([first], chunks), headers=headers)


def _disposition(filename: str | None, sha256: str) -> str:
    name = filename or f"{sha256[:16]}.bin"
    ascii_name = "".join(c if c.isascii() and c.isprintable() else "_" for c in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


@routes.delete(UPLOAD_PATH + "/{attachment_ref}", scope=Scope.WRITE, status_code=204)
def delete_attachment(
    namespace: str, attachment_ref: str, engine: EngineDep, caller: CallerDep
) -> Response:
    engine.attachments.delete(caller, namespace, attachment_ref)
    return Response(status_code=204)
