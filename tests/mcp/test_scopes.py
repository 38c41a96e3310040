"""The tool matrix: every MCP tool × every key kind, as ``tests/security/test_scopes.py`` for REST.

The table walked is ``TOOLS`` itself, so a tool added later is walked too. Each tool is called
with placeholder arguments built from its own schema (agent and namespace in tenant A): a key
below the tool's scope must get the route's 403 ``INSUFFICIENT_SCOPE`` as a tool error naming
the scope, and must not see the tool in ``tools/list``; a key at or above it must not be refused
for scope (nor, for tenant A's own key, for its namespace); no key or a bad key never gets past
the HTTP layer (401). A second test checks every tool's route and scope against the served scope
table, so the table cannot name a route the server does not have.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from dakera_server.api.scopes import RouteScope, scope_table
from dakera_server.engine.access import Scope
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.mcp.table import Tool
from dakera_server.mcp.tools import TOOLS
from tests.conftest import ROOT_KEY, RunningServer, start_server
from tests.mcp.support import TENANT_A, TENANT_B, http_client, make_key, run, text

PLACEHOLDERS = {
    "agent_id": "tenant-a-agent",
    "namespace": "tenant-a",
    "memory_id": "mem_matrix",
    "from_id": "mem_matrix",
    "to_id": "mem_other",
    "session_id": "sess-matrix",
    "query": "matrix",
    "text": "matrix",
    "content": "matrix",
}


@dataclass(frozen=True)
class KeyKind:
    """One kind of caller in the matrix."""

    name: str
    scope: Scope | None  # None: no key, or a key the server does not know
    grants: tuple[str, ...] | None = None

    @property
    def own_tenant(self) -> bool:
        return self.grants is None or "tenant-a" in self.grants


KINDS = [
    KeyKind("none", None),
    KeyKind("bad", None),
    KeyKind("read", Scope.READ),
    KeyKind("write", Scope.WRITE),
    KeyKind("admin", Scope.ADMIN),
    KeyKind("super_admin", Scope.SUPER_ADMIN),
    KeyKind("tenant_a_write", Scope.WRITE, tuple(TENANT_A)),
    KeyKind("tenant_b_write", Scope.WRITE, tuple(TENANT_B)),
    KeyKind("tenant_a_read", Scope.READ, tuple(TENANT_A)),
]


@dataclass
class Matrix:
    server: RunningServer
    secrets: dict[str, str | None]


@pytest.fixture(scope="module")
def matrix(
    tmp_path_factory: pytest.TempPathFactory, embedder: EmbeddingProvider
) -> Iterator[Matrix]:
    server = start_server(tmp_path_factory.mktemp("mcp-matrix"), embedder)
    secrets: dict[str, str | None] = {"none": None, "bad": "dk_" + "0" * 32}
    with server.http() as root:
        for kind in KINDS:
            if kind.scope is not None:
                grants = None if kind.grants is None else list(kind.grants)
                secrets[kind.name] = make_key(root, kind.name, kind.scope.wire, grants)
    yield Matrix(server, secrets)
    server.stop()


def placeholder(name: str, schema: dict[str, Any]) -> Any:
    """A well-formed value for one argument."""
    if name in PLACEHOLDERS:
        return PLACEHOLDERS[name]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "array":
        item = schema.get("items", {})
        if item.get("type") == "object":
            return [{"content": "matrix"}]
        return [0.1] * 384 if item.get("type") == "number" else ["mem_matrix"]
    return {"integer": 1, "number": 0.5, "boolean": False, "object": {}}.get(str(kind), "matrix")


def arguments(tool: Tool) -> dict[str, Any]:
    # agent_id too where it is optional (the OpenMemory aliases take it from the URL otherwise).
    wanted = [arg for arg in tool.args if arg.required or arg.name == "agent_id"]
    return {arg.name: placeholder(arg.name, arg.schema) for arg in wanted}


def verdict(tool: Tool, kind: KeyKind, result: Any, listed: set[str]) -> str | None:
    """What is wrong with one call, or None."""
    assert kind.scope is not None
    where = f"{kind.name:>15} {tool.name}"
    structured = result.structured_content or {}
    code = structured.get("code")
    if kind.scope < tool.scope:
        if tool.name in listed:
            return f"{where}: listed for a key below '{tool.scope.wire}'"
        if not result.is_error or code != "INSUFFICIENT_SCOPE":
            return f"{where}: expected INSUFFICIENT_SCOPE, got {text(result)[:120]}"
        if f"'{tool.scope.wire}'" not in text(result):
            return f"{where}: the refusal does not name the '{tool.scope.wire}' scope"
        return None
    if tool.name not in listed:
        return f"{where}: not listed for a key of scope '{kind.scope.wire}'"
    if code in ("INSUFFICIENT_SCOPE", "AUTHENTICATION_REQUIRED", "INVALID_API_KEY"):
        return f"{where}: refused for its scope: {text(result)[:120]}"
    if kind.own_tenant and kind.grants is not None and structured.get("status") == 403:
        return f"{where}: refused on its own namespace: {text(result)[:120]}"
    return None


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_every_tool_answers_each_key_kind_as_its_route_declares(
    matrix: Matrix, kind: KeyKind
) -> None:
    secret = matrix.secrets[kind.name]
    if kind.scope is None:
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        with httpx.Client(base_url=matrix.server.url, headers=headers) as http:
            for tool in TOOLS:
                params = {"name": tool.name, "arguments": arguments(tool)}
                answer = http.post("/mcp", json={**call, "params": params})
                assert answer.status_code == 401, f"{tool.name}: {answer.status_code}"
        return

    async def walk() -> list[str]:
        problems = []
        async with http_client(matrix.server.url, secret) as client:
            listed = {t.name for t in (await client.list_tools()).tools}
            for tool in TOOLS:
                result = await client.call_tool(tool.name, arguments(tool))
                problem = verdict(tool, kind, result, listed)
                if problem:
                    problems.append(problem)
        return problems

    problems = run(walk())
    assert not problems, "\n".join(problems)


def test_every_tools_route_is_served_with_the_tools_scope(matrix: Matrix) -> None:
    table: list[RouteScope] = scope_table(matrix.server.uvicorn_server.config.app)
    served = {(route.method, route.path): route for route in table}
    for tool in TOOLS:
        route = served.get((tool.method, tool.route))
        assert route is not None, f"{tool.name}: {tool.method} {tool.route} is not a served route"
        assert route.scope is tool.scope, f"{tool.name}: route scope {route.scope.wire}"
        assert not route.unrestricted, f"{tool.name}: mirrors a route for unrestricted keys only"


def test_the_matrix_covers_both_sides_and_every_tool_scope() -> None:
    assert {tool.scope for tool in TOOLS} == {Scope.READ, Scope.WRITE}
    assert len({tool.name for tool in TOOLS}) == len(TOOLS)
    aliases = {tool.name for tool in TOOLS if tool.url_agent}
    assert aliases == {
        "add_memories",
        "search_memory",
        "list_memories",
        "delete_memories",
        "delete_all_memories",
    }


def test_the_root_key_sees_every_tool(matrix: Matrix) -> None:
    async def names() -> set[str]:
        async with http_client(matrix.server.url, ROOT_KEY) as client:
            return {tool.name for tool in (await client.list_tools()).tools}

    assert run(names()) == {tool.name for tool in TOOLS}
