"""Streamable HTTP at ``/mcp`` (and OpenMemory's ``/mcp/<client>/http/<user>``) on the server.

The endpoint sits behind the app's whole middleware stack like any route, so a request without
a valid key gets the same 401 as REST. It runs the SDK's session manager stateless with JSON
answers: every POST carries its own credentials and stands alone, so any node of a cluster can
answer it and no session outlives a request (tools/list is computed per request, per key).

Counting: each tool call and resource read is one REST request dispatched in-process and is
counted, checked and audited by the REST layers (namespace windows included). So that a tool
call is not counted twice, the rate-limit layer lets MCP paths through, and this endpoint counts
the other messages (initialize, tools/list …) against the global bucket itself.
"""

from __future__ import annotations

import re
import time
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Any
from urllib.parse import unquote

from mcp.server.context import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from dakera_server.engine.access import Caller
from dakera_server.engine.access import Scope as KeyScope
from dakera_server.errors import Unauthorized
from dakera_server.mcp.dispatch import AsgiDispatcher
from dakera_server.mcp.server import Connection, Options, build_server
from dakera_server.security.ratelimit import RateLimiter
from dakera_server.security.responses import error_response

__all__ = ["MCP_PATH", "MCP_PREFIXES", "McpEndpoint"]

MCP_PATH = "/mcp"
OPENMEMORY_PATH = "/mcp/{client_name}/http/{user_id}"
MCP_PREFIXES = ("/mcp",)
URL_USER = "dakera.mcp_user"
FORWARDED = frozenset({b"authorization", b"x-api-key", b"host", b"user-agent"})
RATE_LIMITED = -32029  # an implementation-defined JSON-RPC server error code
QUERY_KEY = re.compile(r"(?:^|&)api_key=([^&]*)")


def _credentials(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The headers that say who is calling, copied onto each dispatched REST request.

    A key given as ``?api_key=`` (the only way an OpenMemory URL can carry one) is passed on
    as ``X-API-Key``.
    """
    headers = [(name, value) for name, value in scope.get("headers", ()) if name in FORWARDED]
    if not any(name in (b"authorization", b"x-api-key") for name, _ in headers):
        found = QUERY_KEY.search(scope.get("query_string", b"").decode("latin-1"))
        if found:
            headers.append((b"x-api-key", unquote(found.group(1)).encode("latin-1")))
    return headers


class McpEndpoint:
    """The ASGI app behind the MCP routes; ``app`` is the server's own app to dispatch into."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        options: Options,
        limiter: RateLimiter | None,
        max_body_size: int,
    ) -> None:
        self.app = app
        self.limiter = limiter
        if limiter is not None:
            options = replace(options, rate_check=self._rate_check)
        self.server = build_server(self._connection, options)
        self.manager = StreamableHTTPSessionManager(
            app=self.server,
            json_response=True,
            stateless=True,
            # Host and origin checks are the app's own (auth, allowed hosts, CORS).
            security_settings=None,
            max_request_body_size=max_body_size,
        )

    def routes(self) -> list[Route]:
        """The routes to add to the app: ``/mcp`` and OpenMemory's per-user URL."""
        return [Route(MCP_PATH, endpoint=self), Route(OPENMEMORY_PATH, endpoint=self)]

    def running(self) -> AbstractAsyncContextManager[None]:
        """The session manager's lifetime; entered by the app's lifespan."""
        return self.manager.run()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        caller = scope.get("state", {}).get("caller")
        if scope["type"] != "http" or not isinstance(caller, Caller):
            await error_response(Unauthorized("an API key is required"))(scope, receive, send)
            return
        user = (scope.get("path_params") or {}).get("user_id")
        if isinstance(user, str) and user:
            scope["state"][URL_USER] = user
        await self.manager.handle_request(scope, receive, send)

    def _connection(self, ctx: ServerRequestContext[Any, Any]) -> Connection:
        request = ctx.request
        scope: Scope = request.scope if request is not None else {}
        state = scope.get("state") or {}
        caller = state.get("caller")
        dispatcher = AsgiDispatcher(
            self.app,
            _credentials(scope),
            caller_scope=caller.scope if isinstance(caller, Caller) else KeyScope.PUBLIC,
            client=scope.get("client"),
            server=scope.get("server"),
        )
        return Connection(dispatcher, state.get(URL_USER))

    def _rate_check(self, ctx: ServerRequestContext[Any, Any]) -> None:
        assert self.limiter is not None
        decision = self.limiter.check()
        if not decision.allowed:
            wait = decision.retry_after(time.time())
            raise MCPError(
                RATE_LIMITED,
                f"Too many requests ({decision.reason} limit). Retry later, after {wait} "
                f"second{'s' if wait != 1 else ''}.",
            )
