"""The Model Context Protocol face of the server: the memory as tools for any agent.

Every tool is a thin mapping onto one REST route (``table.py`` and ``tools.py`` hold the one table:
name, route, scope, argument schema). A tool call becomes that REST request and is dispatched
either in-process through the app's own ASGI stack (``dispatch.AsgiDispatcher``: the HTTP endpoint
at ``/mcp`` and the embedded stdio mode) or over HTTP to a running server
(``dispatch.HttpDispatcher``: the stdio thin client). Either way the request meets the same
authentication, scope check, namespace grants, rate limits, input validation and audit as the REST
call it mirrors, with the caller's own credentials; this package decides nothing about access
itself beyond hiding, in ``tools/list``, the tools a key's scope could never call.

Transports: ``http.McpEndpoint`` (streamable HTTP, stateless, inside the running server) and
``stdio.serve_stdio`` (for MCP hosts that launch a command). Both build the same
``server.build_server``.

Imports: the SDK (``mcp``), ``engine.access`` (``Scope``, ``Caller``), ``errors``. The app and the
routers are never imported: ``app.py`` hands this package the ASGI app to dispatch into.
"""
