"""Helpers of the MCP suites: the official MCP client over streamable HTTP or stdio, keys."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.security.conftest import create_key

T = TypeVar("T")
BIN = Path(sys.executable).parent / "dakera-server"
TENANT_A = ["tenant-a", "_dakera_agent_tenant-a-*"]
TENANT_B = ["tenant-b", "_dakera_agent_tenant-b-*"]

__all__ = ["TENANT_A", "TENANT_B", "http_client", "make_key", "run", "stdio_client", "text"]


def run(coroutine: Awaitable[T]) -> T:
    """Run one async test body to completion."""
    return asyncio.run(coroutine)  # type: ignore[arg-type]


@asynccontextmanager
async def http_client(url: str, key: str | None, path: str = "/mcp") -> AsyncIterator[Client]:
    """The official MCP client over streamable HTTP, presenting ``key`` as a Bearer token."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=60.0) as transport_client:
        transport = streamable_http_client(url + path, http_client=transport_client)
        async with Client(transport, cache=None) as client:
            yield client


@asynccontextmanager
async def stdio_client(*args: str) -> AsyncIterator[Client]:
    """The official MCP client talking to ``dakera-server mcp <args>`` launched as a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAKERA_", "RATE_LIMIT_"))}
    params = StdioServerParameters(command=str(BIN), args=["mcp", *args], env=env)
    async with Client(params, cache=None) as client:
        yield client


def make_key(root: httpx.Client, name: str, scope: str, grants: list[str] | None = None) -> str:
    """A new key of ``scope`` (restricted to ``grants`` when given); its secret."""
    body: dict[str, Any] = {"name": name, "scope": scope}
    if grants is not None:
        body["namespaces"] = grants
    return str(create_key(root, **body)["key"])


def text(result: Any) -> str:
    """The text of a tool result."""
    return "".join(getattr(block, "text", "") for block in result.content)
