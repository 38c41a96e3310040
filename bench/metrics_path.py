"""What counting costs: the metering layer per request, our counters against prometheus_client's,
and the analytics routes' latency over a registry that has counted a million requests.

    .venv/bin/python bench/metrics_path.py                      # 50,000 requests per side
    .venv/bin/python bench/metrics_path.py --requests 10000     # quick run

Targets (issue 16): the whole metrics path adds at most 20 µs per request; analytics routes
answer in at most 50 ms with 1M counted requests. Sides are interleaved in rounds so machine
noise hits both alike; the median of the rounds is the figure to read.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from dakera_server.api.ops.metering import MeteringMiddleware
from dakera_server.app import create_app
from dakera_server.config import Settings
from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.ops.cluster import Maintenance
from dakera_server.engine.ops.metrics import MetricsRegistry
from dakera_server.engine.ops.slowlog import SlowQueryLog
from dakera_server.storage.sqlite import SqliteStore

ROOT = "bench-root-key-0123456789abcdef0123456789"


def row(what: str, value: str) -> None:
    print(f"  {what:<62} {value}", flush=True)


# ----------------------------------------------------------------- the layer alone
def _app() -> Starlette:
    async def recall(request: Any) -> JSONResponse:
        await request.body()
        return JSONResponse({"memories": []})

    return Starlette(routes=[Route("/v1/memory/recall", recall, methods=["POST"])])


async def _drive(app: Any, count: int) -> float:
    """CPU seconds for ``count`` in-process ASGI requests (no sockets: the app's own cost)."""
    body = b'{"agent_id": "bench-agent", "query": "what does the user drink?", "top_k": 5}'
    scope_base = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/memory/recall",
        "raw_path": b"/v1/memory/recall",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    started = time.process_time()  # CPU time: contention from other processes does not count
    for _ in range(count):
        await app(dict(scope_base), receive, send)
    return time.process_time() - started


def layer_cost(requests: int, rounds: int) -> float:
    plain = _app()
    data = Path(tempfile.mkdtemp())
    store = SqliteStore(data / "bench.db")
    metrics = MetricsRegistry()
    metered = MeteringMiddleware(
        _app(),
        metrics=metrics,
        slowlog=SlowQueryLog(threshold_ms=500.0),
        maintenance=Maintenance(store, EventBus(), time.time),
    )
    per = max(1, requests // rounds)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(_drive(plain, 500))  # warm both
    loop.run_until_complete(_drive(metered, 500))
    deltas, bare = [], []
    for _ in range(rounds):
        a = loop.run_until_complete(_drive(plain, per))
        b = loop.run_until_complete(_drive(metered, per))
        bare.append(a / per * 1e6)
        deltas.append((b - a) / per * 1e6)
    loop.close()
    store.close()
    counted = metrics.snapshot().route("POST /v1/memory/recall").requests
    row("bare ASGI app, CPU µs per request (median)", f"{statistics.median(bare):.2f}")
    row(
        "metering layer adds, CPU µs per request (median of rounds)",
        f"{statistics.median(deltas):.2f}",
    )
    row("requests the layer counted", f"{counted}")
    return statistics.median(deltas)


def counter_cost(requests: int) -> tuple[float, float]:
    registry = CollectorRegistry()
    counter = Counter("req", "r", ["method", "route", "status"], registry=registry)
    hist = Histogram("lat", "l", ["method", "route"], registry=registry)
    started = time.process_time()
    for _ in range(requests):
        counter.labels("POST", "/v1/memory/recall", "2xx").inc()
        hist.labels("POST", "/v1/memory/recall").observe(0.0123)
    prom = (time.process_time() - started) / requests * 1e6
    ours = MetricsRegistry()
    started = time.process_time()
    for _ in range(requests):
        ours.observe("POST", "/v1/memory/recall", 200, 12.3, "_dakera_agent_a", 80, 40)
    mine = (time.process_time() - started) / requests * 1e6
    row("prometheus_client labels().inc() + observe(), CPU µs", f"{prom:.2f}")
    row("MetricsRegistry.observe (route + namespace), CPU µs", f"{mine:.2f}")
    row("ratio", f"{prom / mine:.1f}x")
    return prom, mine


# ------------------------------------------------------------- analytics at 1M requests
def analytics_latency(counted: int, calls: int) -> dict[str, float]:
    data = Path(tempfile.mkdtemp())
    settings = Settings(
        data_dir=data, root_api_key=ROOT, port=0, grpc_enabled=False, rate_limit_rps=0
    )
    app = create_app(settings)
    engine = app.state.engine
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{url}/health/ready").status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    # A week of history: snapshots every minute for 2 h, then thinned (as retention keeps them).
    rng = random.Random(7)
    routes = [("POST", "/v1/memory/recall"), ("POST", "/v1/memory/store")] + [
        ("POST", f"/v1/namespaces/{{namespace}}/r{i}") for i in range(38)
    ]
    namespaces = [f"_dakera_agent_agent-{i}" for i in range(200)]
    history = engine.ops.history
    now = time.time()
    fake = {"t": now - 7 * 86400}
    history.clock = lambda: fake["t"]
    started = time.perf_counter()
    per_step = counted // 300
    for _ in range(300):
        for _ in range(per_step):
            method, route = routes[rng.randrange(len(routes))]
            engine.ops.metrics.observe(
                method, route, 200, rng.expovariate(1 / 15.0), namespaces[rng.randrange(200)]
            )
        history.snapshot()
        fake["t"] += 7 * 86400 / 300
    history.clock = time.time
    fill = time.perf_counter() - started
    total = engine.ops.metrics.snapshot().total().requests
    row("requests counted (plus history snapshots kept)", f"{total} ({history.count()})")
    row("feeding them, µs per request (registry only)", f"{fill / max(1, total) * 1e6:.2f}")
    results = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ROOT}"}) as http:
        for path in (
            "/v1/analytics/overview?period=24h",
            "/v1/analytics/latency?period=7d",
            "/v1/analytics/throughput?period=1h",
            "/v1/analytics/overview?period=24h&namespace=_dakera_agent_agent-3",
            "/v1/kpis",
            "/v1/ops/metrics",
        ):
            http.get(path).raise_for_status()
            timings = []
            for _ in range(calls):
                begun = time.perf_counter()
                http.get(path).raise_for_status()
                timings.append((time.perf_counter() - begun) * 1000)
            results[path] = statistics.median(timings)
            row(f"GET {path} median ms", f"{results[path]:.2f}")
    server.should_exit = True
    thread.join(timeout=30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--counted", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    print("metering layer (in-process ASGI, interleaved rounds):")
    layer_cost(args.requests, args.rounds)
    print("counter update alone:")
    counter_cost(min(args.requests, 200_000))
    print(f"analytics routes over {args.counted} counted requests (real server, HTTP):")
    analytics_latency(args.counted, args.calls)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
