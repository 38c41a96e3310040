"""Authentication layer: turns the presented key into a ``Caller`` on the request scope.

Keys come as ``Authorization: Bearer <key>``, ``X-API-Key: <key>``, or (for SSE, where a
browser cannot set headers) ``?api_key=``. Public paths pass without a key. The scope a route
needs is checked by the route's own dependency; this layer only says who is calling.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from dakera_server.api.errors import error_response
from dakera_server.engine.access import Caller
from dakera_server.engine.access import Scope as KeyScope
from dakera_server.errors import DakeraError, HostNotAllowed, Unauthorized

__all__ = ["AUTH_DISABLED_CALLER", "AuthenticationMiddleware", "presented_secret"]

AUTH_DISABLED_CALLER = Caller(
    key_id="auth-disabled",
    name="Auth Disabled",
    scope=KeyScope.SUPER_ADMIN,
    namespaces=None,
    auth_enabled=False,
)
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def presented_secret(scope: Scope) -> str | None:
    """The key the request carries, if any."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            text = str(value.decode("latin-1")).strip()
            if text[:7].lower() == "bearer ":
                return text[7:].strip() or None
        elif name == b"x-api-key":
            return str(value.decode("latin-1")).strip() or None
    query = scope.get("query_string", b"")
    if b"api_key=" in query:
        values = parse_qs(query.decode("latin-1")).get("api_key")
        if values:
            return str(values[0])
    return None


def _host(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            host = str(value.decode("latin-1")).strip().lower()
            if host.startswith("["):
                return host.split("]")[0] + "]"
            return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return ""


class AuthenticationMiddleware:
    """Pure ASGI layer: resolve the key, or refuse with 401 (421 for foreign hosts, auth off)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Callable[[str], Caller],
        public_paths: frozenset[str],
        enabled: bool,
        allowed_hosts: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.authenticate = authenticate
        self.public_paths = public_paths
        self.enabled = enabled
        self.allowed_hosts = LOCAL_HOSTS | {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        try:
            if not self.enabled:
                if _host(scope) not in self.allowed_hosts:
                    raise HostNotAllowed(
                        "auth is disabled, so only local Host headers are served "
                        "(set DAKERA_ALLOWED_HOSTS to allow more)"
                    )
                state["caller"] = AUTH_DISABLED_CALLER
            else:
                secret = presented_secret(scope)
                if secret is None:
                    if scope["path"] not in self.public_paths:
                        raise Unauthorized("an API key is required")
                elif scope["path"] in self.public_paths:
                    # A probe never fails for a stale key; it just does not authenticate.
                    pass
                else:
                    state["caller"] = self.authenticate(secret)
        except DakeraError as exc:
            await error_response(exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)
