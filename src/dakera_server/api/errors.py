"""The handlers that route every error raised under the router to the one renderer.

The renderer itself (``error_body``, ``error_response``) lives in ``security/responses.py``,
below both the routers and the security layers, so a refusal from any layer and an error from a
handler look the same without the layers importing the routers.
"""

from __future__ import annotations

import logging

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from dakera_server.errors import (
    DakeraError,
    InternalError,
    InvalidInput,
    MethodNotAllowed,
    RouteNotFound,
    UnprocessableContent,
)
from dakera_server.security.responses import error_body, error_response

__all__ = ["error_body", "error_response", "exception_handlers"]

logger = logging.getLogger("dakera_server.errors")


def _describe_validation(exc: RequestValidationError) -> tuple[str, bool]:
    """A short message naming the first bad field, and whether it was an unknown field."""
    errors = exc.errors()
    if not errors:
        return "invalid request", False
    first = errors[0]
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    where = ".".join(location) or "body"
    kind = str(first.get("type", ""))
    if kind == "extra_forbidden":
        return f"unknown field '{where}'", True
    if kind == "json_invalid":
        return "malformed JSON body", False
    if kind == "missing":
        return f"missing required field '{where}'", False
    message = str(first.get("msg", "invalid value"))
    return f"invalid field '{where}': {message}", False


async def _handle_dakera(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DakeraError)
    return error_response(exc)


async def _handle_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    message, unknown_field = _describe_validation(exc)
    if unknown_field:
        return error_response(UnprocessableContent(message))
    return error_response(InvalidInput(message))


async def _handle_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return error_response(RouteNotFound(f"no route for {request.method} {request.url.path}"))
    if exc.status_code == 405:
        return error_response(MethodNotAllowed(f"method {request.method} not allowed here"))
    if exc.status_code == 400:
        return error_response(InvalidInput("malformed request"))
    generic = DakeraError(str(exc.detail) if exc.status_code < 500 else "internal error")
    generic.status = exc.status_code
    return error_response(generic)


async def _handle_unexpected(request: Request, exc: Exception) -> Response:
    # The one place that catches everything: log the traceback here, tell the client nothing.
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(InternalError("internal error"))


def exception_handlers() -> dict[type[Exception] | int, object]:
    """Handlers for ``FastAPI(exception_handlers=...)``; subclasses are found through the MRO."""
    return {
        DakeraError: _handle_dakera,
        RequestValidationError: _handle_validation,
        StarletteHTTPException: _handle_http,
        Exception: _handle_unexpected,
    }
