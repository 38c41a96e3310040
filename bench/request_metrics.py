"""What the request-metrics layer (``/metrics`` counters and latency histogram) adds to a request.

A/B in one run: a trivial ASGI app called directly, then wrapped in
``RequestMetricsMiddleware``, 50,000 requests each, seven rounds interleaved; plus
``RequestMetrics.record`` alone.

    .venv/bin/python bench/request_metrics.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any

from dakera_server.security.requestmetrics import RequestMetrics, RequestMetricsMiddleware

REQUESTS = 50_000


async def bare(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def ignore(message: Any) -> None:
    return None


async def request() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


async def per_request_us(app: Any) -> float:
    scope = {"type": "http", "method": "GET", "path": "/x"}
    started = time.perf_counter()
    for _ in range(REQUESTS):
        await app(scope, request, ignore)
    return (time.perf_counter() - started) / REQUESTS * 1e6


async def main() -> None:
    print(f"load average {os.getloadavg()[0]:.2f}")
    wrapped = RequestMetricsMiddleware(bare, metrics=RequestMetrics())
    added = []
    for _ in range(7):
        plain = await per_request_us(bare)
        added.append(await per_request_us(wrapped) - plain)
    print(
        f"layer adds per request: median {statistics.median(added):.2f} µs "
        f"(min {min(added):.2f}, max {max(added):.2f})"
    )
    metrics = RequestMetrics()
    started = time.perf_counter()
    for _ in range(200_000):
        metrics.record("GET", 200, 0.003)
    print(f"record() alone: {(time.perf_counter() - started) / 200_000 * 1e6:.2f} µs")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
