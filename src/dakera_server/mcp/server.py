"""The MCP server both transports share: tools and resources, each call one REST request.

``build_server`` wires the SDK's low-level ``Server`` to the tool table. Per request it asks
``connection_for(ctx)`` who is calling (a ``Dispatcher`` carrying their credentials, and the user
an OpenMemory URL names), so nothing about a caller outlives the request.

* ``tools/list``: the tools the key's scope allows (write tools need ``write``), none of the
  write tools in read-only mode;
* ``tools/call``: the tool's REST request, sent through the dispatcher; a refusal (401, 403, 404,
  400 validation, 429 …) is a tool error carrying the route's own message and code;
* resources: an agent's recent memories and a session's memories (the REST listings).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import mcp_types as types
from mcp.server import Server
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError

from dakera_server import __version__
from dakera_server.engine.access import Scope
from dakera_server.errors import InvalidInput
from dakera_server.mcp import render
from dakera_server.mcp.dispatch import Dispatcher
from dakera_server.mcp.table import Limits, RouteCall, Tool, route_call
from dakera_server.mcp.tools import TOOLS

__all__ = ["Connection", "Options", "build_server", "visible_tools"]

RESOURCE_NOT_FOUND = -32002
AGENT_URI = re.compile(r"^dakera://agents/([^/]+)/memories$")
SESSION_URI = re.compile(r"^dakera://sessions/([^/]+)/memories$")
RESOURCE_PAGE = 50
# Methods that send REST requests, which the REST layers count and check themselves.
DISPATCHING = frozenset({"tools/call", "resources/read", "resources/list"})
INSTRUCTIONS = (
    "Long-term memory for agents. Call dakera_recall (or search_memory) before answering "
    "questions that may depend on earlier conversations, and dakera_store (or add_memories) "
    "when the user shares something worth keeping. Every agent_id is a separate memory."
)


@dataclass(frozen=True)
class Connection:
    """Who one MCP request comes from: where its REST requests go, and the URL's user."""

    dispatcher: Dispatcher
    url_agent: str | None = None


@dataclass(frozen=True)
class Options:
    """Server-wide choices: read-only mode, result limits, the table, a rate check."""

    read_only: bool = False
    limits: Limits = field(default_factory=Limits)
    tools: tuple[Tool, ...] = TOOLS
    # Counts one non-dispatching message (initialize, tools/list …) and raises ``MCPError``
    # when the caller is over a limit; tool calls are counted by the REST layers instead.
    rate_check: Callable[[ServerRequestContext[Any, Any]], None] | None = None


ConnectionFor = Callable[[ServerRequestContext[Any, Any]], Connection]


def visible_tools(tools: tuple[Tool, ...], scope: Scope, read_only: bool) -> list[Tool]:
    """The tools a key of ``scope`` may call (write tools hidden in read-only mode)."""
    return [t for t in tools if scope >= t.scope and not (read_only and t.writes)]


def _describe(tool: Tool) -> types.Tool:
    return types.Tool(
        name=tool.name,
        title=tool.title,
        description=tool.description,
        input_schema=tool.input_schema(),
        annotations=types.ToolAnnotations(
            title=tool.title,
            read_only_hint=not tool.writes,
            destructive_hint=tool.method == "DELETE" or "forget" in tool.route,
            open_world_hint=False,
        ),
    )


def _error(text: str, structured: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structured_content=structured,
        is_error=True,
    )


async def call_tool(
    tool: Tool, arguments: dict[str, Any], connection: Connection, options: Options
) -> types.CallToolResult:
    """Run one tool: its REST request through the connection's dispatcher, rendered."""
    if options.read_only and tool.writes:
        return _error(
            f"{tool.name} writes, and this MCP server is read-only.",
            {"code": "READ_ONLY", "error": "read-only MCP server"},
        )
    try:
        call = route_call(tool, arguments, connection.url_agent)
    except InvalidInput as exc:
        return _error(f"Invalid arguments: {exc.message}", {"code": exc.code, "error": exc.message})
    answer = await connection.dispatcher.send(call, tool.name)
    if answer.status >= 400:
        return _error(*render.error_text(answer.status, answer.body, answer.retry_after))
    shown = tool.render(answer.body, arguments, options.limits)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=shown.text)],
        structured_content=shown.structured,
    )


def _resource_call(uri: str) -> tuple[RouteCall, str] | None:
    found = AGENT_URI.match(uri)
    if found:
        route, tool = "/v1/agents/{}/memories", "resource:agent_memories"
    else:
        found = SESSION_URI.match(uri)
        if not found:
            return None
        route, tool = "/v1/sessions/{}/memories", "resource:session_memories"
    raw = found.group(1)
    query = [("limit", str(RESOURCE_PAGE))]
    return RouteCall("GET", route.format(unquote(raw)), route.format(raw), query, None), tool


def build_server(connection_for: ConnectionFor, options: Options) -> Server[Any]:
    """The low-level MCP server over the tool table."""
    by_name = {tool.name: tool for tool in options.tools}
    listing = render.memories(None)

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        scope = await connection_for(ctx).dispatcher.scope()
        tools = visible_tools(options.tools, scope, options.read_only)
        return types.ListToolsResult(tools=[_describe(tool) for tool in tools])

    async def on_call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        tool = by_name.get(params.name)
        if tool is None:
            return _error(f"Unknown tool '{params.name[:64]}'.", {"code": "UNKNOWN_TOOL"})
        return await call_tool(tool, dict(params.arguments or {}), connection_for(ctx), options)

    async def list_templates(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(
            resource_templates=[
                types.ResourceTemplate(
                    name="agent-memories",
                    uri_template="dakera://agents/{agent_id}/memories",
                    description="An agent's most recent memories, newest first.",
                    mime_type="text/plain",
                ),
                types.ResourceTemplate(
                    name="session-memories",
                    uri_template="dakera://sessions/{session_id}/memories",
                    description="The memories stored in one session.",
                    mime_type="text/plain",
                ),
            ]
        )

    async def list_resources(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        answer = await connection_for(ctx).dispatcher.send(
            RouteCall("GET", "/v1/agents", "/v1/agents", [], None), "resources/list"
        )
        agents = answer.body if answer.status == 200 and isinstance(answer.body, list) else []
        return types.ListResourcesResult(
            resources=[
                types.Resource(
                    name=f"memories of {a.get('agent_id')}",
                    uri=f"dakera://agents/{a.get('agent_id')}/memories",
                    description=f"Recent memories of agent {a.get('agent_id')}.",
                    mime_type="text/plain",
                )
                for a in agents[:100]
            ]
        )

    async def read_resource(
        ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        resolved = _resource_call(uri)
        if resolved is None:
            raise MCPError(RESOURCE_NOT_FOUND, "no such resource; see resources/templates/list")
        answer = await connection_for(ctx).dispatcher.send(*resolved)
        if answer.status >= 400:
            text, _ = render.error_text(answer.status, answer.body, answer.retry_after)
            raise MCPError(RESOURCE_NOT_FOUND if answer.status == 404 else -32603, text)
        shown = listing(answer.body, {}, options.limits)
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type="text/plain", text=shown.text)]
        )

    server: Server[Any] = Server(
        "dakera-server",
        version=__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=on_call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
    )
    if options.rate_check is not None:
        server.middleware.append(_RateMiddleware(options.rate_check))
    return server


class _RateMiddleware:
    """Counts the messages that send no REST request (tool calls are counted there)."""

    def __init__(self, check: Callable[[ServerRequestContext[Any, Any]], None]) -> None:
        self.check = check

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.request_id is not None and ctx.method not in DISPATCHING:
            self.check(ctx)
        return await call_next(ctx)
