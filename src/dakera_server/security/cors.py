"""CORS layer: browser access for the origins in ``DAKERA_CORS_ORIGINS``, and no others.

* A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) from a listed
  origin, for an allowed method and allowed request headers, is answered here with 204 and the
  ``Access-Control-Allow-*`` headers; it never reaches authentication (browsers send preflights
  without credentials).
* Any other preflight is refused with a 400 in our JSON error shape. The browser would block the
  request anyway; answering plainly tells the developer why (as Starlette's CORS layer does).
* Actual requests from a listed origin get ``Access-Control-Allow-Origin`` (and
  ``-Credentials`` when enabled) on every response, errors included, so a browser client can
  read the error body. Requests from other origins pass through without CORS headers.

``*`` allows any origin; together with credentials it is refused at start-up (``config.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dakera_server.errors import InvalidInput
from dakera_server.security.responses import error_response

__all__ = ["ALLOWED_HEADERS", "ALLOWED_METHODS", "EXPOSED_HEADERS", "CORSMiddleware"]

ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
ALLOWED_HEADERS = (
    "accept",
    "accept-language",
    "authorization",
    "cache-control",
    "content-language",
    "content-type",
    "last-event-id",
    "x-api-key",
    "x-request-id",
)
EXPOSED_HEADERS = (
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-Quota-Limit",
    "X-Request-Id",
    "x-dakera-export-skipped",
)
PREFLIGHT_MAX_AGE = 600


class CORSMiddleware:
    """Pure ASGI layer for cross-origin browser access (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allow_origins: Sequence[str],
        allow_credentials: bool = False,
        max_age: int = PREFLIGHT_MAX_AGE,
    ) -> None:
        self.app = app
        self.any_origin = "*" in allow_origins
        self.origins = frozenset(o.rstrip("/").lower() for o in allow_origins if o != "*")
        self.credentials = allow_credentials
        self.preflight_headers = {
            "Access-Control-Allow-Methods": ", ".join(ALLOWED_METHODS),
            "Access-Control-Allow-Headers": ", ".join(ALLOWED_HEADERS),
            "Access-Control-Max-Age": str(max_age),
        }
        self.expose = ", ".join(EXPOSED_HEADERS)

    def allowed(self, origin: str) -> bool:
        """True when ``origin`` may read responses."""
        return self.any_origin or origin.rstrip("/").lower() in self.origins

    def _cors_headers(self, origin: str) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.any_origin and not self.credentials:
            headers["Access-Control-Allow-Origin"] = "*"
        else:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Vary"] = "Origin"
        if self.credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(scope, receive, send, headers, origin)
            return
        if not self.allowed(origin):
            await self.app(scope, receive, send)
            return
        extra = self._cors_headers(origin)
        extra["Access-Control-Expose-Headers"] = self.expose

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    if name == "Vary":
                        response_headers.add_vary_header(value)
                    else:
                        response_headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers, origin: str
    ) -> None:
        method = headers["access-control-request-method"].strip().upper()
        requested = [
            h.strip().lower()
            for h in headers.get("access-control-request-headers", "").split(",")
            if h.strip()
        ]
        problem = None
        if not self.allowed(origin):
            problem = "origin not allowed (set DAKERA_CORS_ORIGINS)"
        elif method not in ALLOWED_METHODS:
            problem = "method not allowed"
        elif any(h not in ALLOWED_HEADERS for h in requested):
            problem = "request header not allowed"
        if problem is not None:
            await error_response(InvalidInput(f"CORS preflight refused: {problem}"))(
                scope, receive, send
            )
            return
        answer = {**self._cors_headers(origin), **self.preflight_headers}
        await send({"type": "http.response.start", "status": 204, "headers": _raw(answer)})
        await send({"type": "http.response.body", "body": b""})


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
