"""What a tool is: a name, the REST route it mirrors, the scope that route needs, its arguments.

A ``Tool`` is data. ``route_call`` turns a tool's arguments into the REST request (path
parameters, query string, JSON body); the REST route then checks everything a REST client's
request would meet. Adding a tool is adding one ``Tool(...)`` to the table in ``tools.py`` (or
``aliases.py``); ``tests/mcp/test_tool_table.py`` checks its route and scope against the served
scope table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from dakera_server.engine.access import Scope
from dakera_server.errors import InvalidInput

__all__ = [
    "Arg",
    "Limits",
    "Rendered",
    "Renderer",
    "RouteCall",
    "Tool",
    "route_call",
    "string",
]

Where = Literal["body", "query", "path"]


@dataclass(frozen=True)
class Limits:
    """How much of a result a tool shows (the context window is the scarce resource)."""

    max_content_chars: int = 1000


@dataclass(frozen=True)
class Rendered:
    """A tool result: compact text for the model, structured content for programs."""

    text: str
    structured: dict[str, Any]


Renderer = Callable[[Any, Mapping[str, Any], Limits], Rendered]


@dataclass(frozen=True)
class Arg:
    """One tool argument: its JSON Schema and where it goes in the REST request."""

    name: str
    schema: dict[str, Any]
    required: bool = False
    to: Where = "body"
    wire: str | None = None  # the REST name, when it differs from the tool's

    @property
    def wire_name(self) -> str:
        """The parameter's name in the REST request."""
        return self.wire or self.name


@dataclass(frozen=True)
class Tool:
    """One MCP tool and the REST route it is a thin mapping onto.

    ``scope`` is the scope of that route (the test walks the served scope table to keep them
    equal); ``fixed`` values are sent on every call (e.g. a filter that matches every memory).
    ``url_agent``: the ``agent_id`` argument may be left out when the endpoint URL names the
    user (OpenMemory's ``/mcp/<client>/http/<user>``).
    """

    name: str
    method: str
    route: str
    scope: Scope
    title: str
    description: str
    args: tuple[Arg, ...]
    render: Renderer
    fixed: Mapping[str, Any] = field(default_factory=dict)
    url_agent: bool = False
    alias_of: str | None = None

    @property
    def writes(self) -> bool:
        """Whether the mirrored route changes data (hidden and refused in read-only mode)."""
        return self.scope >= Scope.WRITE

    def input_schema(self) -> dict[str, Any]:
        """The JSON Schema of the arguments."""
        return {
            "type": "object",
            "properties": {arg.name: arg.schema for arg in self.args},
            "required": [arg.name for arg in self.args if arg.required],
            "additionalProperties": False,
        }


@dataclass(frozen=True)
class RouteCall:
    """One REST request: the concrete path, its query parameters and JSON body."""

    method: str
    path: str
    raw_path: str
    query: list[tuple[str, str]]
    body: dict[str, Any] | None


def string(description: str, **extra: Any) -> dict[str, Any]:
    """A string argument's schema."""
    return {"type": "string", "description": description, **extra}


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def route_call(tool: Tool, arguments: Mapping[str, Any], url_agent: str | None) -> RouteCall:
    """The REST request for ``tool`` called with ``arguments``.

    Only shapes are handled here (unknown or missing arguments, path parameters that must be
    strings); every value is checked by the REST route itself, as for a REST client.
    """
    known = {arg.name: arg for arg in tool.args}
    unknown = sorted(set(arguments) - set(known))
    if unknown:
        raise InvalidInput(
            f"unknown argument '{unknown[0]}' for {tool.name}; it takes: {', '.join(known)}"
        )
    values = dict(arguments)
    if tool.url_agent and values.get("agent_id") is None and url_agent is not None:
        values["agent_id"] = url_agent
    body: dict[str, Any] = {}
    query: list[tuple[str, str]] = []
    path = raw_path = tool.route
    for arg in tool.args:
        value = values.get(arg.name)
        if value is None:
            if arg.required or (tool.url_agent and arg.name == "agent_id"):
                raise InvalidInput(f"{tool.name} needs the '{arg.name}' argument")
            continue
        if arg.to == "path":
            if not isinstance(value, str) or not value:
                raise InvalidInput(f"'{arg.name}' must be a non-empty string")
            placeholder = "{" + arg.wire_name + "}"
            path = path.replace(placeholder, value)
            raw_path = raw_path.replace(placeholder, quote(value, safe=""))
        elif arg.to == "query":
            query.append((arg.wire_name, _query_value(value)))
        else:
            body[arg.wire_name] = value
    for name, value in tool.fixed.items():
        if tool.method == "GET":
            query.append((name, _query_value(value)))
        else:
            body.setdefault(name, value)
    has_body = tool.method not in ("GET", "HEAD")
    return RouteCall(tool.method, path, raw_path, query, body if has_body else None)
