"""Authentication layer: turns the presented key into a ``Caller`` on the request scope.

Keys come as ``Authorization: Bearer <key>``, ``X-API-Key: <key>``, or (for SSE, where a
browser cannot set headers) ``?api_key=``. Public paths pass without a key. The scope a route
needs is checked by the route's own dependency; this layer only says who is calling, and,
after the response, counts the request against the key (status, bytes, latency, endpoint,
namespace) through ``record_usage`` — a dict update, never I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import parse_qs

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dakera_server.engine.access import Caller, agent_namespace
from dakera_server.engine.access import Scope as KeyScope
from dakera_server.errors import DakeraError, HostNotAllowed, Unauthorized
from dakera_server.security.responses import error_response

__all__ = ["AUTH_DISABLED_CALLER", "AuthenticationMiddleware", "UsageRecorder", "presented_secret"]

AUTH_DISABLED_CALLER = Caller(
    key_id="auth-disabled",
    name="Auth Disabled",
    scope=KeyScope.SUPER_ADMIN,
    namespaces=None,
    auth_enabled=False,
)
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})

# (key_id, status, bytes in + out, latency ms, endpoint template, namespace or None, unix now)
UsageRecorder = Callable[[str, int, int, float, str, str | None, int], None]


def _request_facts(scope: Scope) -> tuple[str | None, int]:
    """The key the request carries, if any, and its declared body length (one header pass)."""
    secret: str | None = None
    length = 0
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            if secret is None:
                text = value.decode("latin-1").strip()
                if text[:7].lower() == "bearer ":
                    secret = text[7:].strip() or None
        elif name == b"x-api-key":
            if secret is None:
                secret = value.decode("latin-1").strip() or None
        elif name == b"content-length" and value.isdigit():
            length = int(value)
    if secret is None:
        query = scope.get("query_string", b"")
        if b"api_key=" in query:
            values = parse_qs(query.decode("latin-1")).get("api_key")
            if values:
                secret = values[0]
    return secret, length


def presented_secret(scope: Scope) -> str | None:
    """The key the request carries, if any."""
    return _request_facts(scope)[0]


def _host(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            host = str(value.decode("latin-1")).strip().lower()
            if host.startswith("["):
                return host.split("]")[0] + "]"
            return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return ""


def _endpoint(scope: Scope) -> str:
    """``METHOD /path/{template}`` of the matched route (bounded set), else ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return f"{scope['method']} {path}" if isinstance(path, str) else "unmatched"


def _namespace(scope: Scope) -> str | None:
    """The namespace a request names in its path or ``agent_id`` query (bodies are not read)."""
    params = scope.get("path_params") or {}
    namespace = params.get("namespace")
    if isinstance(namespace, str):
        return namespace
    agent_id = params.get("agent_id")
    if isinstance(agent_id, str):
        return agent_namespace(agent_id)
    query = scope.get("query_string", b"")
    if b"agent_id=" in query:
        values = parse_qs(query.decode("latin-1")).get("agent_id")
        if values:
            return agent_namespace(values[0])
    return None


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
        record_usage: UsageRecorder | None = None,
        off_loop: bool = False,
    ) -> None:
        self.app = app
        self.authenticate = authenticate
        # On a shared store a key lookup first reads the key version from PostgreSQL: that
        # round trip runs in a worker thread, never on the event loop.
        self.off_loop = off_loop
        self.public_paths = public_paths
        self.enabled = enabled
        self.allowed_hosts = LOCAL_HOSTS | {h.lower() for h in allowed_hosts}
        self.record_usage = record_usage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if not self.enabled:
            if _host(scope) not in self.allowed_hosts:
                await self._refuse(
                    HostNotAllowed(
                        "auth is disabled, so only local Host headers are served "
                        "(set DAKERA_ALLOWED_HOSTS to allow more)"
                    ),
                    scope,
                    receive,
                    send,
                )
                return
            state["caller"] = AUTH_DISABLED_CALLER
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.public_paths:
            # A probe never fails for a stale key; it just does not authenticate.
            await self.app(scope, receive, send)
            return
        secret, received = _request_facts(scope)
        if secret is None:
            await self._refuse(Unauthorized("an API key is required"), scope, receive, send)
            return
        try:
            if self.off_loop:
                caller = await anyio.to_thread.run_sync(self.authenticate, secret)
            else:
                caller = self.authenticate(secret)
        except DakeraError as exc:
            await self._refuse(exc, scope, receive, send)
            return
        state["caller"] = caller
        if self.record_usage is None:
            await self.app(scope, receive, send)
            return
        await self._counted(caller, received, scope, receive, send)

    async def _counted(
        self, caller: Caller, received: int, scope: Scope, receive: Receive, send: Send
    ) -> None:
        started = time.perf_counter()
        status = 500
        sent = 0

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            assert self.record_usage is not None
            self.record_usage(
                caller.key_id,
                status,
                received + sent,
                (time.perf_counter() - started) * 1000.0,
                _endpoint(scope),
                _namespace(scope),
                int(time.time()),
            )

    async def _refuse(self, exc: DakeraError, scope: Scope, receive: Receive, send: Send) -> None:
        await error_response(exc)(scope, receive, send)
