"""``dakera-server mcp`` over stdio, launched as a subprocess by the official MCP client.

Thin-client mode (``--url``) talks to a real server on loopback; embedded mode (``--data-dir``)
serves a data directory in the subprocess itself. The flows are the HTTP suite's.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client

from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.mcp.tools import TOOLS
from tests.conftest import RunningServer, start_server
from tests.mcp.support import BIN, make_key, run, stdio_client, text

READ_TOOLS = {tool.name for tool in TOOLS if not tool.writes}
ALL_TOOLS = {tool.name for tool in TOOLS}
INJECTED = {"agent_id": "stdio-agent", "content": "fine", "tags": ["../../etc/passwd"]}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, embedder: EmbeddingProvider
) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("mcp-stdio"), embedder)
    yield running
    running.stop()


async def names(client: Client) -> set[str]:
    return {tool.name for tool in (await client.list_tools()).tools}


async def round_trip(client: Client, agent: str) -> str:
    """Store, recall, forget one memory and check the refused injection; the recalled id."""
    stored = await client.call_tool(
        "dakera_store", {"agent_id": agent, "content": "Ottawa is the capital of Canada"}
    )
    assert not stored.is_error, text(stored)
    memory_id = str(stored.structured_content["id"])
    recalled = await client.call_tool(
        "dakera_recall", {"agent_id": agent, "query": "capital of Canada"}
    )
    assert [m["id"] for m in recalled.structured_content["memories"]] == [memory_id]
    injected = await client.call_tool("dakera_store", {**INJECTED, "agent_id": agent})
    assert injected.is_error and injected.structured_content["code"] == "INVALID_REQUEST"
    assert "path traversal" in text(injected)
    return memory_id


def test_thin_client_store_recall_forget_injection_and_rate_limit(server: RunningServer) -> None:
    with server.http() as root:
        key = make_key(root, "stdio-write", "write")
        policy = {"rate_limit_enabled": True, "rate_limit_recalls_per_minute": 2}
        answer = root.put("/v1/namespaces/_dakera_agent_stdio-limited/memory_policy", json=policy)
        assert answer.status_code == 200

    async def flow() -> None:
        async with stdio_client("--url", server.url, "--api-key", key) as client:
            assert client.server_info is not None and client.server_info.name == "dakera-server"
            assert await names(client) == ALL_TOOLS
            memory_id = await round_trip(client, "stdio-agent")
            forgotten = await client.call_tool(
                "dakera_forget", {"agent_id": "stdio-agent", "memory_ids": [memory_id]}
            )
            assert forgotten.structured_content["deleted_count"] == 1
            arguments = {"agent_id": "stdio-limited", "query": "anything"}
            results = [await client.call_tool("dakera_recall", arguments) for _ in range(3)]
            assert not results[0].is_error and results[2].is_error
            assert results[2].structured_content["code"] == "RATE_LIMIT_EXCEEDED"
            assert "Retry later" in text(results[2])

    run(flow())


def test_thin_client_lists_by_scope_and_honours_read_only(server: RunningServer) -> None:
    with server.http() as root:
        read_key = make_key(root, "stdio-read", "read")
        write_key = make_key(root, "stdio-write-ro", "write")

    async def flow() -> None:
        async with stdio_client("--url", server.url, "--api-key", read_key) as client:
            assert await names(client) == READ_TOOLS
            refused = await client.call_tool("dakera_store", {"agent_id": "a", "content": "b"})
            assert refused.structured_content["code"] == "INSUFFICIENT_SCOPE"
        async with stdio_client(
            "--url", server.url, "--api-key", write_key, "--read-only"
        ) as client:
            assert await names(client) == READ_TOOLS
            refused = await client.call_tool("dakera_store", {"agent_id": "a", "content": "b"})
            assert refused.structured_content["code"] == "READ_ONLY"

    run(flow())


def test_thin_client_with_a_bad_key_exits_saying_why(server: RunningServer) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
    done = subprocess.run(
        [str(BIN), "mcp", "--url", server.url, "--api-key", "dk_" + "0" * 32],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert b"did not accept the API key" in done.stderr
    assert done.stdout == b""  # standard output belongs to the protocol


def test_embedded_mode_serves_a_data_dir_with_no_listener(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")

    async def first() -> None:
        async with stdio_client("--data-dir", data_dir) as client:
            assert await names(client) == ALL_TOOLS
            await round_trip(client, "desk")

    async def read_only() -> None:
        async with stdio_client("--data-dir", data_dir, "--read-only") as client:
            assert await names(client) == READ_TOOLS
            recalled = await client.call_tool(
                "dakera_recall", {"agent_id": "desk", "query": "Canada"}
            )
            assert "Ottawa" in text(recalled)  # the first run's memory is durable

    run(first())
    run(read_only())
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
    created = subprocess.run(
        [str(BIN), "keys", "create", "--name", "desk-read", "--scope", "read", "--json"],
        env={**env, "DAKERA_DATA_DIR": data_dir},
        capture_output=True,
        timeout=60,
        check=True,
    )
    read_key = json.loads(created.stdout)["key"]

    async def keyed() -> None:
        async with stdio_client("--data-dir", data_dir, "--api-key", read_key) as client:
            assert await names(client) == READ_TOOLS
            refused = await client.call_tool("dakera_store", {"agent_id": "desk", "content": "x"})
            assert refused.structured_content["code"] == "INSUFFICIENT_SCOPE"

    run(keyed())
