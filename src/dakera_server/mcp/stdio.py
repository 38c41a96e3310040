"""stdio transport, for MCP hosts that launch a command: ``dakera-server mcp``.

Two modes, one server (``server.build_server``):

* ``--url``: a thin client of a running server. Each tool call is one REST request over HTTP
  with the given key, so the remote server checks, limits and audits it like any REST call.
* ``--data-dir``: embedded, for one desktop user. ``cli.py`` builds the app over the data
  directory without any listener (no REST port, no gRPC), and each tool call is dispatched into
  that app in-process, through the same middleware stack the HTTP server uses. Without an API key
  the caller is the local operator (as for ``dakera-server keys``): whoever can read the data
  directory owns it.

Nothing may write to standard output but the protocol: the SDK points file descriptor 1 at
standard error while serving, and this module logs to standard error only.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import anyio
import httpx
from mcp.server.stdio import stdio_server
from starlette.types import ASGIApp

from dakera_server import __version__
from dakera_server.engine.access import Scope
from dakera_server.mcp.dispatch import AsgiDispatcher, Dispatcher, HttpDispatcher
from dakera_server.mcp.server import Connection, Options, build_server
from dakera_server.mcp.table import RouteCall

__all__ = ["StdioError", "run_embedded", "run_remote", "serve_stdio"]

READY = RouteCall("GET", "/health/ready", "/health/ready", [], None)
READY_TIMEOUT_SECONDS = 180.0
HTTP_TIMEOUT_SECONDS = 60.0


class StdioError(Exception):
    """The stdio server cannot start (bad key, unreachable server); the message says why."""


async def serve_stdio(dispatcher: Dispatcher, options: Options) -> None:
    """Serve MCP on standard input and output until the host closes them."""
    connection = Connection(dispatcher)
    server = build_server(lambda _ctx: connection, options)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


async def run_remote(url: str, api_key: str | None, options: Options) -> None:
    """The thin client: check the key against ``url`` once, then serve stdio."""
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(
        base_url=url.rstrip("/"), headers=headers, timeout=HTTP_TIMEOUT_SECONDS
    ) as client:
        dispatcher = HttpDispatcher(client)
        try:
            scope = await dispatcher.scope()
        except httpx.HTTPError as exc:
            raise StdioError(f"cannot reach the server at {url}: {type(exc).__name__}") from None
        if scope is Scope.PUBLIC:
            raise StdioError(
                f"the server at {url} did not accept the API key "
                "(give --api-key or DAKERA_MCP_API_KEY, a key of scope read or higher)"
            )
        await serve_stdio(dispatcher, options)


async def run_embedded(app: ASGIApp, lifespan: Any, api_key: str | None, options: Options) -> None:
    """Run ``app``'s lifespan in this process and serve stdio over it (no network listener).

    ``lifespan`` is the app's lifespan context manager factory (``app.router.lifespan_context``).
    """
    headers = [
        (b"host", b"localhost"),
        (b"user-agent", f"dakera-server-mcp/{__version__}".encode()),
    ]
    if api_key:
        headers.append((b"x-api-key", api_key.encode("latin-1")))
    dispatcher = AsgiDispatcher(app, headers, server=("localhost", None))
    async with lifespan(app):
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while (await dispatcher.send(READY, "ready")).status != 200:
            if time.monotonic() > deadline:
                raise StdioError("the embedded server did not become ready")
            await anyio.sleep(0.05)
        if await dispatcher.scope() is Scope.PUBLIC:
            raise StdioError("the API key was not accepted by the data directory's key store")
        print("dakera-server mcp: embedded server ready, serving MCP on stdio", file=sys.stderr)
        await serve_stdio(dispatcher, options)
