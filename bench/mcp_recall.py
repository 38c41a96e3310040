"""A recall through MCP against the same recall through REST: same server, same data, same run.

Part 1, end to end: one ``dakera-server serve`` process (auth on, rate limits off) holds N
memories of one agent; this process asks the same queries alternately as ``POST
/v1/memory/recall`` (httpx, one keep-alive connection) and as the ``dakera_recall`` tool over
streamable HTTP at ``/mcp`` (the official MCP client, ``mcp`` 2.3.0), so machine noise hits both
sides alike. Target (issue 17): MCP p50 within 1.5x of REST p50.

Part 2, the in-process dispatch alone: the app built in this process, the same recall called
(a) straight on the engine and (b) as the REST request a tool call makes, through the app's
whole middleware stack (``AsgiDispatcher``). The difference is what checking a tool call exactly
as REST costs; a trivial route dispatched the same way shows that fixed cost without the
embedding's variance.

    .venv/bin/python bench/mcp_recall.py                     # 300 recalls per side, 200 memories
    .venv/bin/python bench/mcp_recall.py --requests 100      # quick run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import ROOT_KEY
from tests.processes import spawn_server

AGENT = "bench-mcp"
TOPICS = ("coffee", "hiking", "budget", "meeting", "python", "garden", "travel", "music")


def row(what: str, value: str) -> None:
    print(f"  {what:<58} {value}", flush=True)


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p90 = ordered[int(len(ordered) * 0.9)]
    return f"p50 {statistics.median(ordered):6.2f} ms   p90 {p90:6.2f} ms   (n={len(ordered)})"


def memories(count: int) -> list[dict[str, object]]:
    return [
        {"content": f"Note {i}: the user talked about {TOPICS[i % len(TOPICS)]} on day {i % 30}."}
        for i in range(count)
    ]


async def end_to_end(url: str, requests: int, stored: int) -> tuple[float, float]:
    headers = {"Authorization": f"Bearer {ROOT_KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as rest:
        answer = await rest.post(
            "/v1/memories/store/batch", json={"agent_id": AGENT, "memories": memories(stored)}
        )
        answer.raise_for_status()
        async with httpx2.AsyncClient(headers=headers, timeout=60) as transport:
            async with Client(streamable_http_client(url + "/mcp", http_client=transport)) as mcp:
                rest_ms: list[float] = []
                mcp_ms: list[float] = []
                for i in range(requests + 20):  # the first 20 of each side warm up
                    query = f"what did the user say about {TOPICS[i % len(TOPICS)]}?"
                    body = {"agent_id": AGENT, "query": query, "top_k": 5}
                    started = time.perf_counter()
                    answer = await rest.post("/v1/memory/recall", json=body)
                    rest_time = (time.perf_counter() - started) * 1000
                    assert answer.status_code == 200 and len(answer.json()["memories"]) == 5
                    started = time.perf_counter()
                    result = await mcp.call_tool("dakera_recall", body)
                    mcp_time = (time.perf_counter() - started) * 1000
                    assert not result.is_error and result.structured_content["count"] == 5
                    if i >= 20:
                        rest_ms.append(rest_time)
                        mcp_ms.append(mcp_time)
    print(
        f"\nEnd to end: recall of top 5 among {stored} memories, {requests} per side, alternating"
    )
    row("REST  POST /v1/memory/recall (httpx)", summary(rest_ms))
    row("MCP   tools/call dakera_recall (official client)", summary(mcp_ms))
    return statistics.median(rest_ms), statistics.median(mcp_ms)


async def in_process(requests: int, stored: int) -> None:
    from dakera_server.app import create_app
    from dakera_server.config import Settings
    from dakera_server.engine.access import Caller, Scope
    from dakera_server.engine.memory.recall import recall
    from dakera_server.mcp.dispatch import WHOAMI, AsgiDispatcher
    from dakera_server.mcp.table import route_call
    from dakera_server.mcp.tools import TOOLS_BY_NAME

    folder = Path(tempfile.mkdtemp(prefix="bench-mcp-inproc-"))
    settings = Settings(
        data_dir=folder,
        root_api_key=ROOT_KEY,
        rate_limit_rps=0,
        grpc_enabled=False,
        log_level="warning",
    )
    app = create_app(settings)
    engine = app.state.engine
    auth = [(b"authorization", f"Bearer {ROOT_KEY}".encode()), (b"host", b"localhost")]
    dispatcher = AsgiDispatcher(app, auth, caller_scope=Scope.SUPER_ADMIN)
    operator = Caller("root", "root", Scope.SUPER_ADMIN)
    tool = TOOLS_BY_NAME["dakera_recall"]
    async with app.router.lifespan_context(app):
        ready = route_call(TOOLS_BY_NAME["dakera_agent_list"], {}, None)
        while (await dispatcher.send(ready, "ready")).status != 200:
            await asyncio.sleep(0.05)
        store = route_call(
            TOOLS_BY_NAME["dakera_batch_store"],
            {"agent_id": AGENT, "memories": memories(stored)},
            None,
        )
        assert (await dispatcher.send(store, "bench")).status == 200
        direct_ms: list[float] = []
        stack_ms: list[float] = []
        for i in range(requests + 20):
            query = f"what did the user say about {TOPICS[i % len(TOPICS)]}?"
            started = time.perf_counter()
            outcome = await asyncio.to_thread(
                recall, engine.memories, operator, AGENT, query, top_k=5
            )
            direct = (time.perf_counter() - started) * 1000
            assert len(outcome.results) == 5
            call = route_call(tool, {"agent_id": AGENT, "query": query, "top_k": 5}, None)
            started = time.perf_counter()
            answer = await dispatcher.send(call, tool.name)
            through = (time.perf_counter() - started) * 1000
            assert answer.status == 200 and len(answer.body["memories"]) == 5
            if i >= 20:
                direct_ms.append(direct)
                stack_ms.append(through)
        whoami_ms: list[float] = []
        for _ in range(requests * 3):
            started = time.perf_counter()
            answer = await dispatcher.send(WHOAMI, "bench")
            whoami_ms.append((time.perf_counter() - started) * 1000)
            assert answer.status == 200
    print(f"\nIn process: the same recall, {requests} per side, alternating")
    row("engine call (recall(), in a worker thread as the route runs it)", summary(direct_ms))
    row("REST request through the full middleware stack (AsgiDispatcher)", summary(stack_ms))
    extra = statistics.median(stack_ms) - statistics.median(direct_ms)
    row("dispatch overhead (difference of medians)", f"{extra:+.2f} ms")
    row("a trivial route (GET /v1/auth/whoami) through the stack", summary(whoami_ms))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--memories", type=int, default=200)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    folder = Path(tempfile.mkdtemp(prefix="bench-mcp-"))
    server = spawn_server(
        folder / "data",
        folder / "server.log",
        ready_timeout=180,
        DAKERA_GRPC_ENABLED="false",
        RATE_LIMIT_RPS="0",
        DAKERA_LOG_LEVEL="warning",
    )
    try:
        rest_p50, mcp_p50 = asyncio.run(end_to_end(server.url, args.requests, args.memories))
    finally:
        server.stop()
    ratio = mcp_p50 / rest_p50
    row("MCP / REST (p50)", f"{ratio:.2f}x   target <= 1.5x: {'met' if ratio <= 1.5 else 'MISSED'}")
    asyncio.run(in_process(args.requests, args.memories))
    print(f"load average after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")


if __name__ == "__main__":
    main()
