"""MCP over streamable HTTP at ``/mcp``, with the official MCP client against a real server.

Each flow is compared with what the REST route it mirrors answers for the same request: the
tool is a thin mapping onto that route, refusals included.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from mcp.shared.exceptions import MCPError

from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.mcp.tools import TOOLS
from tests.conftest import ROOT_KEY, RunningServer, start_server
from tests.mcp.support import TENANT_A, TENANT_B, http_client, make_key, run, text

READ_TOOLS = {tool.name for tool in TOOLS if not tool.writes}
WRITE_TOOLS = {tool.name for tool in TOOLS if tool.writes}


@dataclass
class Env:
    server: RunningServer
    audit_log: Path
    keys: dict[str, str]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, embedder: EmbeddingProvider) -> Iterator[Env]:
    data = tmp_path_factory.mktemp("mcp-http")
    audit_log = data / "audit.log"
    server = start_server(
        data / "data",
        embedder,
        audit_enabled=True,
        audit_log_path=audit_log,
        mcp_max_content_chars=60,
    )
    with server.http() as root:
        keys = {
            "read": make_key(root, "mcp-read", "read"),
            "write": make_key(root, "mcp-write", "write"),
            "admin": make_key(root, "mcp-admin", "admin"),
            "tenant_a": make_key(root, "mcp-tenant-a", "write", TENANT_A),
            "tenant_b": make_key(root, "mcp-tenant-b", "write", TENANT_B),
        }
    yield Env(server, audit_log, keys)
    server.stop()


def audit_lines(env: Env) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in env.audit_log.read_bytes().splitlines() if line]


def test_no_key_or_a_bad_key_gets_401_before_any_mcp_message(env: Env) -> None:
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    for key in (None, "dk_" + "0" * 32):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        with httpx.Client(base_url=env.server.url, headers=headers) as http:
            answer = http.post("/mcp", json=initialize)
        assert answer.status_code == 401, answer.text
        assert answer.json()["code"] in ("AUTHENTICATION_REQUIRED", "INVALID_API_KEY")

    async def flow() -> None:
        async with http_client(env.server.url, None) as client:
            await client.list_tools()

    with pytest.raises(Exception):  # noqa: B017 - the SDK surfaces the 401 as a transport error
        run(flow())


@pytest.mark.parametrize(
    ("kind", "sees_writes"),
    [("read", False), ("write", True), ("admin", True), ("tenant_a", True), ("root", True)],
)
def test_tools_list_shows_what_the_keys_scope_allows(
    env: Env, kind: str, sees_writes: bool
) -> None:
    key = ROOT_KEY if kind == "root" else env.keys[kind]

    async def flow() -> set[str]:
        async with http_client(env.server.url, key) as client:
            assert client.server_info is not None
            assert client.server_info.name == "dakera-server"
            return {tool.name for tool in (await client.list_tools()).tools}

    names = run(flow())
    assert names >= READ_TOOLS
    assert (names & WRITE_TOOLS) == (WRITE_TOOLS if sees_writes else set())


def test_store_then_recall_round_trip_and_forget(env: Env) -> None:
    agent = "mcp-roundtrip"
    long_content = "The user's favourite mountain is the Matterhorn. " * 4

    async def flow() -> None:
        async with http_client(env.server.url, env.keys["write"]) as client:
            stored = await client.call_tool(
                "dakera_store", {"agent_id": agent, "content": long_content, "tags": ["travel"]}
            )
            assert not stored.is_error, text(stored)
            memory_id = stored.structured_content["id"]
            recalled = await client.call_tool(
                "dakera_recall", {"agent_id": agent, "query": "favourite mountain", "top_k": 1}
            )
            assert not recalled.is_error, text(recalled)
            found = recalled.structured_content["memories"]
            assert [m["id"] for m in found] == [memory_id]
            # Content cut to DAKERA_MCP_MAX_CONTENT_CHARS (60 here), and said so.
            assert found[0]["content"] == long_content[:60]
            assert found[0]["content_truncated"] and found[0]["content_length"] == len(long_content)
            assert f"cut at 60 of {len(long_content)} characters" in text(recalled)
            whole = await client.call_tool("dakera_memory_get", {"memory_id": memory_id})
            assert whole.structured_content["memory"]["content"] == long_content
            forgotten = await client.call_tool(
                "dakera_forget", {"agent_id": agent, "memory_ids": [memory_id]}
            )
            assert forgotten.structured_content["deleted_count"] == 1, text(forgotten)
            gone = await client.call_tool("dakera_memory_get", {"memory_id": memory_id})
            assert gone.is_error and "HTTP 404" in text(gone)

    run(flow())


def test_export_then_import_moves_an_agents_memories(env: Env) -> None:
    """dakera_memory_export gives the jsonl file in structured content; dakera_memory_import
    of it into another agent brings the same contents; a bad row is reported, not fatal."""
    source, target = "mcp-export-src", "mcp-export-dst"

    async def flow() -> None:
        async with http_client(env.server.url, env.keys["write"]) as client:
            for fact in ("Prefers window seats.", "Allergic to peanuts."):
                stored = await client.call_tool(
                    "dakera_store", {"agent_id": source, "content": fact}
                )
                assert not stored.is_error, text(stored)
            exported = await client.call_tool("dakera_memory_export", {"agent_id": source})
            assert not exported.is_error, text(exported)
            assert text(exported).startswith(f"Exported 2 memories of agent {source} as jsonl")
            data = exported.structured_content["data"]
            rows = [orjson.loads(line) for line in data.splitlines()]
            assert sorted(r["content"] for r in rows) == [
                "Allergic to peanuts.",
                "Prefers window seats.",
            ]
            lines = [orjson.dumps({**r, "id": None, "agent_id": target}).decode() for r in rows]
            imported = await client.call_tool(
                "dakera_memory_import",
                {
                    "agent_id": target,
                    "format": "jsonl",
                    "data": "\n".join([*lines, "{not json"]),
                },
            )
            assert not imported.is_error, text(imported)
            job = imported.structured_content
            assert (job["imported"], len(job["errors"])) == (2, 1), job
            listed = await client.call_tool("dakera_agent_memories", {"agent_id": target})
            contents = sorted(m["content"] for m in listed.structured_content["memories"])
            assert contents == ["Allergic to peanuts.", "Prefers window seats."]

    run(flow())


def test_recall_returns_at_most_top_k(env: Env) -> None:
    agent = "mcp-topk"

    async def flow() -> None:
        async with http_client(env.server.url, env.keys["write"]) as client:
            memories = [{"content": f"Note number {i} about gardening"} for i in range(6)]
            stored = await client.call_tool(
                "dakera_batch_store", {"agent_id": agent, "memories": memories}
            )
            assert stored.structured_content["stored_count"] == 6, text(stored)
            recalled = await client.call_tool(
                "dakera_recall", {"agent_id": agent, "query": "gardening", "top_k": 3}
            )
            assert recalled.structured_content["count"] == 3

    run(flow())


@pytest.mark.parametrize(
    "arguments",
    [
        {"metadata": {"$where": "sleep(1000)"}},  # NoSQL operator outside a filter
        {"tags": ["../../etc/passwd"]},  # path traversal in a structured field
        {"metadata": {"note": "<script>alert(1)</script>"}},  # XSS inside metadata
    ],
    ids=["nosql-metadata", "traversal-tag", "xss-metadata"],
)
def test_an_injection_in_a_structured_argument_is_refused_as_rest_refuses_it(
    env: Env, arguments: dict[str, object]
) -> None:
    body = {"agent_id": "mcp-injection", "content": "harmless", **arguments}
    with env.server.http(env.keys["write"]) as http:
        rest = http.post("/v1/memory/store", json=body)
    assert rest.status_code == 400, rest.text

    async def flow() -> None:
        async with http_client(env.server.url, env.keys["write"]) as client:
            result = await client.call_tool("dakera_store", body)
            assert result.is_error
            assert result.structured_content["code"] == rest.json()["code"]
            assert result.structured_content["error"] == rest.json()["error"]
            listed = await client.call_tool("dakera_agent_memories", {"agent_id": "mcp-injection"})
            assert listed.structured_content["count"] == 0  # a refused call wrote nothing

    run(flow())


def test_a_read_key_calling_a_write_tool_gets_the_routes_refusal(env: Env) -> None:
    async def flow() -> None:
        async with http_client(env.server.url, env.keys["read"]) as client:
            result = await client.call_tool("dakera_store", {"agent_id": "x", "content": "y"})
            assert result.is_error
            assert result.structured_content["code"] == "INSUFFICIENT_SCOPE"
            assert "'write'" in text(result)

    run(flow())


def test_a_tenant_key_never_sees_another_tenants_agent(env: Env) -> None:
    with env.server.http() as root:
        for agent in ("tenant-a-alice", "tenant-b-bob"):
            answer = root.post(
                "/v1/memory/store", json={"agent_id": agent, "content": f"secret of {agent}"}
            )
            assert answer.status_code == 200, answer.text

    async def flow() -> None:
        async with http_client(env.server.url, env.keys["tenant_a"]) as client:
            agents = await client.call_tool("dakera_agent_list", {})
            ids = {a["agent_id"] for a in agents.structured_content["agents"]}
            assert "tenant-a-alice" in ids and "tenant-b-bob" not in ids
            # Another tenant's agent behaves as one that does not exist, as over REST.
            for tool, arguments in [
                ("dakera_recall", {"agent_id": "tenant-b-bob", "query": "secret"}),
                ("dakera_search", {"agent_id": "tenant-b-bob", "query": "secret"}),
                ("dakera_agent_memories", {"agent_id": "tenant-b-bob"}),
            ]:
                result = await client.call_tool(tool, arguments)
                assert "secret of tenant-b-bob" not in text(result), tool
                assert "secret of tenant-b-bob" not in str(result.structured_content), tool
            planted = await client.call_tool(
                "dakera_store", {"agent_id": "tenant-b-bob", "content": "planted"}
            )
            assert planted.is_error, text(planted)
            resources = await client.list_resources()
            assert all("tenant-b" not in str(r.uri) for r in resources.resources)
            hidden = await client.read_resource("dakera://agents/tenant-b-bob/memories")
            assert "secret of tenant-b-bob" not in hidden.contents[0].text

    run(flow())


def test_a_rate_limited_key_gets_a_tool_error_that_says_retry_later(env: Env) -> None:
    namespace = "_dakera_agent_mcp-limited"
    policy = {"rate_limit_enabled": True, "rate_limit_recalls_per_minute": 1}
    with env.server.http() as root:
        assert root.put(f"/v1/namespaces/{namespace}/memory_policy", json=policy).status_code == 200

    async def flow() -> None:
        async with http_client(env.server.url, env.keys["write"]) as client:
            arguments = {"agent_id": "mcp-limited", "query": "anything"}
            first = await client.call_tool("dakera_recall", arguments)
            assert not first.is_error, text(first)
            second = await client.call_tool("dakera_recall", arguments)
            assert second.is_error
            assert second.structured_content["code"] == "RATE_LIMIT_EXCEEDED"
            assert second.structured_content["retry_after"] >= 1
            assert "Retry later" in text(second)

    run(flow())


def test_the_audit_line_of_a_tool_call_names_the_tool(env: Env) -> None:
    async def flow() -> None:
        async with http_client(env.server.url, env.keys["read"]) as client:
            result = await client.call_tool(
                "dakera_recall", {"agent_id": "mcp-audited", "query": "anything"}
            )
            assert not result.is_error, text(result)

    run(flow())
    # A REST client cannot claim to be a tool: only in-process dispatch writes the field.
    with env.server.http(env.keys["read"], headers={"X-Dakera-MCP-Tool": "forged"}) as http:
        http.post("/v1/memory/recall", json={"agent_id": "mcp-audited", "query": "x"})
    lines: list[dict[str, object]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the writer thread flushes off the request path
        lines = [e for e in audit_lines(env) if e.get("agent_id") == "mcp-audited"]
        if len(lines) >= 2:  # the tool's REST line and the REST client's line
            break
        time.sleep(0.05)
    tool_lines = [e for e in lines if e.get("mcp_tool") == "dakera_recall"]
    assert len(tool_lines) == 1, lines
    assert tool_lines[0]["path"] == "/v1/memory/recall" and tool_lines[0]["status"] == 200
    assert tool_lines[0]["key_name"] == "mcp-read"
    rest_lines = [e for e in lines if e.get("path") == "/v1/memory/recall" and e not in tool_lines]
    assert rest_lines and all("mcp_tool" not in e for e in rest_lines)


def test_openmemory_tools_work_on_the_openmemory_url(env: Env) -> None:
    path = f"/mcp/claude/http/om-alice?api_key={env.keys['write']}"

    async def flow() -> None:
        async with http_client(env.server.url, None, path) as client:
            added = await client.call_tool("add_memories", {"text": "Alice is allergic to peanuts"})
            assert not added.is_error, text(added)
            found = await client.call_tool("search_memory", {"query": "food allergy"})
            assert "peanuts" in text(found)
            listed = await client.call_tool("list_memories", {})
            ids = [m["id"] for m in listed.structured_content["memories"]]
            assert ids == [added.structured_content["id"]]
            deleted = await client.call_tool("delete_memories", {"memory_ids": ids})
            assert deleted.structured_content["deleted_count"] == 1
            await client.call_tool("add_memories", {"text": "one"})
            await client.call_tool("add_memories", {"text": "two"})
            cleared = await client.call_tool("delete_all_memories", {})
            assert cleared.structured_content["deleted_count"] == 2, text(cleared)

    run(flow())
    with env.server.http() as root:
        assert root.get("/v1/agents/om-alice/memories").json() == []


def test_resources_list_and_read_an_agents_and_a_sessions_memories(env: Env) -> None:
    async def flow() -> None:
        async with http_client(env.server.url, env.keys["write"]) as client:
            started = await client.call_tool("dakera_session_start", {"agent_id": "mcp-res"})
            session_id = started.structured_content["session_id"]
            await client.call_tool(
                "dakera_store",
                {
                    "agent_id": "mcp-res",
                    "content": "Met Bob at the bakery",
                    "session_id": session_id,
                },
            )
            templates = await client.list_resource_templates()
            assert {t.uri_template for t in templates.resource_templates} == {
                "dakera://agents/{agent_id}/memories",
                "dakera://sessions/{session_id}/memories",
            }
            listed = await client.list_resources()
            assert "dakera://agents/mcp-res/memories" in {str(r.uri) for r in listed.resources}
            for uri in (
                "dakera://agents/mcp-res/memories",
                f"dakera://sessions/{session_id}/memories",
            ):
                contents = (await client.read_resource(uri)).contents
                assert "Met Bob at the bakery" in contents[0].text
            ended = await client.call_tool("dakera_session_end", {"session_id": session_id})
            assert not ended.is_error, text(ended)

    run(flow())


@pytest.fixture(scope="module")
def read_only(
    tmp_path_factory: pytest.TempPathFactory, embedder: EmbeddingProvider
) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("mcp-ro"), embedder, mcp_read_only=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def limited(
    tmp_path_factory: pytest.TempPathFactory, embedder: EmbeddingProvider
) -> Iterator[RunningServer]:
    # 4 requests a second: room for the client's handshake, not for a burst of calls.
    server = start_server(
        tmp_path_factory.mktemp("mcp-limited"), embedder, rate_limit_rps=4, rate_limit_burst=0
    )
    yield server
    server.stop()


def test_read_only_hides_and_refuses_every_write_tool(read_only: RunningServer) -> None:
    async def flow() -> None:
        async with http_client(read_only.url, ROOT_KEY) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert names == READ_TOOLS
            refused = await client.call_tool("dakera_store", {"agent_id": "ro", "content": "x"})
            assert refused.is_error and refused.structured_content["code"] == "READ_ONLY"

    run(flow())
    with read_only.http() as root:  # nothing was written
        assert root.get("/v1/agents/ro/memories").json() == []


def test_the_global_bucket_refuses_tool_calls_and_other_messages_with_retry_later(
    limited: RunningServer,
) -> None:
    async def flow() -> tuple[list[str], list[str]]:
        tool_errors: list[str] = []
        protocol_errors: list[str] = []
        async with http_client(limited.url, ROOT_KEY) as client:
            for _ in range(8):
                result = await client.call_tool("dakera_agent_list", {})
                if result.is_error:
                    tool_errors.append(text(result))
                try:
                    await client.list_tools()
                except MCPError as exc:
                    protocol_errors.append(exc.message)
        return tool_errors, protocol_errors

    tool_errors, protocol_errors = run(flow())
    assert tool_errors, "no tool call was refused"
    assert all("RATE_LIMIT_EXCEEDED" in t and "Retry later" in t for t in tool_errors)
    assert protocol_errors and all("Retry later" in m for m in protocol_errors)
