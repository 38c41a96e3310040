"""Sending a tool's REST request: in-process through the app's ASGI stack, or over HTTP.

``AsgiDispatcher`` calls the whole app (security headers, body limit, audit, authentication,
rate limits, input validation, the route) with the caller's own credentials copied from the MCP
request, so a tool call is checked exactly as the REST call it mirrors and costs no socket. It
names the tool in the request's ASGI state under ``TOOL_STATE``; the audit layer writes it on the
request's line. An HTTP client cannot put anything in the ASGI state, so that field cannot be
forged (a header could be).

``HttpDispatcher`` is the stdio thin client's: ordinary REST requests to a running server, whose
audit line shows the tool in the client-declared user agent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import anyio
import httpx
import orjson
from starlette.types import ASGIApp, Message

from dakera_server import __version__
from dakera_server.engine.access import Scope
from dakera_server.mcp.table import RouteCall
from dakera_server.security.audit import MCP_TOOL_STATE

__all__ = ["TOOL_STATE", "Answer", "AsgiDispatcher", "Dispatcher", "HttpDispatcher"]

TOOL_STATE = MCP_TOOL_STATE
WHOAMI = RouteCall("GET", "/v1/auth/whoami", "/v1/auth/whoami", [], None)


@dataclass(frozen=True)
class Answer:
    """The REST answer: status, parsed JSON body (text when not JSON), ``Retry-After``."""

    status: int
    body: Any
    retry_after: str | None = None


def _answer(status: int, content_type: str, payload: bytes, retry_after: str | None) -> Answer:
    if content_type.startswith("application/json"):
        try:
            return Answer(status, orjson.loads(payload) if payload else None, retry_after)
        except orjson.JSONDecodeError:
            pass
    return Answer(status, payload.decode("utf-8", errors="replace"), retry_after)


class Dispatcher(Protocol):
    """Where a tool's REST request goes."""

    async def send(self, call: RouteCall, tool: str) -> Answer:
        """Send ``call`` on behalf of ``tool``; the answer is the route's, refusals included."""

    async def scope(self) -> Scope:
        """The scope of the key the calls are made with (``PUBLIC`` when it has none)."""


async def _scope_from_whoami(dispatcher: Dispatcher) -> Scope:
    answer = await dispatcher.send(WHOAMI, "whoami")
    if answer.status != 200 or not isinstance(answer.body, dict):
        return Scope.PUBLIC
    return Scope.parse(str(answer.body.get("scope", "read")))


class AsgiDispatcher:
    """Dispatch into ``app`` in-process, as one more request through its full middleware stack.

    ``headers`` are the credentials and identity to present (``authorization``/``x-api-key``,
    ``host``, ``user-agent``); ``caller_scope`` is the scope the auth layer already resolved for
    them, when known (else it is asked for through ``/v1/auth/whoami``).
    """

    def __init__(
        self,
        app: ASGIApp,
        headers: Sequence[tuple[bytes, bytes]],
        *,
        caller_scope: Scope | None = None,
        client: tuple[str, int] | None = None,
        server: tuple[str, int | None] | None = None,
    ) -> None:
        self.app = app
        self.headers = list(headers)
        self.caller_scope = caller_scope
        self.client = client
        self.server = server

    async def scope(self) -> Scope:
        if self.caller_scope is None:
            self.caller_scope = await _scope_from_whoami(self)
        return self.caller_scope

    async def send(self, call: RouteCall, tool: str) -> Answer:
        payload = b"" if call.body is None else orjson.dumps(call.body)
        headers = [*self.headers, (b"content-length", str(len(payload)).encode())]
        if call.body is not None:
            headers.append((b"content-type", b"application/json"))
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": call.method,
            "scheme": "http",
            "path": call.path,
            "raw_path": call.raw_path.encode(),
            "root_path": "",
            "query_string": urlencode(call.query).encode(),
            "headers": headers,
            "client": self.client,
            "server": self.server,
            "state": {TOOL_STATE: tool},
        }
        finished = anyio.Event()
        delivered = False
        status = 500
        content_type = ""
        retry_after: str | None = None
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": payload, "more_body": False}
            await finished.wait()  # a layer polling for disconnects waits for the answer
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status, content_type, retry_after
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", ()):
                    if name.lower() == b"content-type":
                        content_type = value.decode("latin-1")
                    elif name.lower() == b"retry-after":
                        retry_after = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    finished.set()

        try:
            await self.app(scope, receive, send)
        finally:
            finished.set()
        return _answer(status, content_type, b"".join(chunks), retry_after)


class HttpDispatcher:
    """Dispatch to a running server over HTTP with one API key (the stdio thin client)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self._scope: Scope | None = None

    async def scope(self) -> Scope:
        if self._scope is None:
            self._scope = await _scope_from_whoami(self)
        return self._scope

    async def send(self, call: RouteCall, tool: str) -> Answer:
        response = await self.client.request(
            call.method,
            call.raw_path,
            params=tuple(call.query),
            content=None if call.body is None else orjson.dumps(call.body),
            headers={
                "user-agent": f"dakera-server-mcp/{__version__} tool/{tool}",
                **({} if call.body is None else {"content-type": "application/json"}),
            },
        )
        return _answer(
            response.status_code,
            response.headers.get("content-type", ""),
            response.content,
            response.headers.get("retry-after"),
        )
