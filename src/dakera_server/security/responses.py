"""One renderer for every error body, used by the security layers and the routers' handlers.

Body shape (dakera-api.md §1.6): ``{"error": message, "code": CODE}`` plus ``details`` and
``resource`` when present. Layers outside the router call ``error_response`` directly, and the
router's handlers (``api/errors.py``) call it too, so a refusal from any layer looks the same.
Only a ``DakeraError``'s safe message ever reaches a client.
"""

from __future__ import annotations

import orjson
from starlette.responses import Response

from dakera_server.errors import DakeraError

__all__ = ["error_body", "error_response"]


def error_body(exc: DakeraError) -> bytes:
    """The JSON bytes of an error; only the safe message, code, details and resource."""
    body: dict[str, object] = {"error": exc.message, "code": exc.code}
    if exc.details is not None:
        body["details"] = exc.details
    if exc.resource is not None:
        body["resource"] = exc.resource
    for key, value in exc.extra.items():
        body.setdefault(key, value)
    return orjson.dumps(body)


def error_response(exc: DakeraError) -> Response:
    """A complete JSON response for ``exc`` with its status and headers."""
    return Response(
        content=error_body(exc),
        status_code=exc.status,
        media_type="application/json",
        headers=exc.headers,
    )
