"""Two nodes on one PostgreSQL against one node: recall throughput and server CPU per request.

    .venv/bin/python -m bench.scaleout                     # 2,000 memories, 16 clients, 15 s
    .venv/bin/python -m bench.scaleout --n 5000 --clients 32 --seconds 30
    .venv/bin/python -m bench.scaleout --pin     # node A on CPU 0 only, node B on CPU 1 only

A throwaway PostgreSQL 15 cluster (``tests/pgcluster.py``, ``fsync=on``) is pre-filled with
``--n`` memories of one agent (``bench/latency.py`` ``prefill``); two ``dakera-server serve``
processes (nodes A and B) run on it, rate limits off. ``--clients`` closed-loop clients
(``bench/loadclient.py``: ~40 us of client CPU per request) send ``recall(top_k=10)`` for
``--seconds``: first all to A ("one node"), then half to A and half to B ("two nodes", the
client balancing as a load balancer would). Reported per phase: requests per second, p50
latency, and the server CPU per request (utime + stime of the serving processes' trees over
the phase, divided by the requests). Issue 13's target is two nodes ≥ 1.6× one node's
throughput "when the client has enough concurrency"; on a 2-core machine one node can already
use both cores, so the CPU per request says whether a second node adds cost, and the
throughput ratio can only reach 1.6× where one node leaves cores idle.

``--pin`` stands in for one machine per node: each node's process (every thread it will start,
BLAS included) may run on one CPU only, node A on CPU 0 and node B on CPU 1, so "one node" has
one core's worth of serving and "two nodes" two. PostgreSQL and the load client are not pinned:
in the one-node phase they have CPU 1 mostly to themselves, in the two-node phase they compete
with node B, which biases the ratio against two nodes. Prints the load average before and
after and ``SCALEOUT_SUMMARY {json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import ROOT_KEY  # noqa: E402
from tests.processes import ServerProcess, spawn_server  # noqa: E402

from bench.latency import pct, prefill  # noqa: E402
from bench.load import tree_cpu_seconds  # noqa: E402
from bench.loadclient import Connection  # noqa: E402
from bench.postgres import bench_database  # noqa: E402
from bench.textgen import queries  # noqa: E402

AGENT = "scale"


async def _drive(ports: list[int], clients: int, seconds: float) -> list[float]:
    """Closed-loop recalls from ``clients`` connections spread over ``ports``; latencies (ms)."""
    asked = [
        json.dumps({"agent_id": AGENT, "query": q, "top_k": 10}).encode()
        for q in queries(200, seed=7)
    ]
    headers = {"Authorization": f"Bearer {ROOT_KEY}"}
    deadline = time.monotonic() + seconds
    latencies: list[float] = []

    async def client(index: int) -> None:
        connection = Connection("127.0.0.1", ports[index % len(ports)], headers)
        i = index
        try:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                answer = await connection.request("POST", "/v1/memory/recall", asked[i % 200])
                if answer.status != 200:
                    raise RuntimeError(f"recall answered {answer.status}: {answer.body[:200]!r}")
                latencies.append((time.perf_counter() - started) * 1000)
                i += clients
        finally:
            await connection.close()

    await asyncio.gather(*(client(i) for i in range(clients)))
    return latencies


@contextlib.contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Processes started inside may run on ``cpu`` only (a child inherits the affinity of the
    thread that forks it); ``None`` changes nothing."""
    if cpu is None:
        yield
        return
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def phase(nodes: list[ServerProcess], clients: int, seconds: float) -> dict[str, float]:
    """One load phase over ``nodes``: throughput, p50 and server CPU per request."""
    ports = [int(node.url.rsplit(":", 1)[1]) for node in nodes]
    asyncio.run(_drive(ports, clients, 2.0))  # warm-up: connections, caches
    cpu_before = sum(tree_cpu_seconds(node.process.pid) for node in nodes)
    started = time.monotonic()
    latencies = asyncio.run(_drive(ports, clients, seconds))
    elapsed = time.monotonic() - started
    cpu = sum(tree_cpu_seconds(node.process.pid) for node in nodes) - cpu_before
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies),
        "p95_ms": pct(latencies, 0.95),
        "server_cpu_ms_per_request": 1000 * cpu / max(1, len(latencies)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--pin", action="store_true", help="node A on CPU 0, node B on CPU 1")
    args = parser.parse_args()

    load_before = os.getloadavg()
    with bench_database("scale") as (url, work, base):
        prefill(work / "seed", AGENT, args.n, base, storage_url=url)
        env = {"DAKERA_STORAGE_URL": url, "RATE_LIMIT_RPS": "0"}
        nodes = []
        for cpu, name in enumerate(("a", "b")):
            with pinned(cpu if args.pin else None):
                nodes.append(spawn_server(work / name, work / f"{name}.log", **env))
        try:
            one = phase(nodes[:1], args.clients, args.seconds)
            two = phase(nodes, args.clients, args.seconds)
        finally:
            for node in nodes:
                node.stop()
    load_after = os.getloadavg()
    print(
        f"{args.n} memories in one agent, {args.clients} clients, {args.seconds:.0f} s per "
        f"phase, {os.cpu_count()} CPUs{', one CPU per node' if args.pin else ''}, "
        f"load average before {load_before[0]:.2f} / after "
        f"{load_after[0]:.2f} (1 min)"
    )
    print("| phase | recalls/s | p50 (ms) | p95 (ms) | server CPU ms/request |")
    print("|---|---:|---:|---:|---:|")
    for name, row in (("one node", one), ("two nodes", two)):
        print(
            f"| {name} | {row['rps']:.1f} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | "
            f"{row['server_cpu_ms_per_request']:.2f} |"
        )
    ratio = two["rps"] / one["rps"]
    print(f"two nodes / one node throughput: {ratio:.2f}× (target ≥ 1.6×)")
    summary = {
        "n": args.n,
        "clients": args.clients,
        "seconds": args.seconds,
        "cpus": os.cpu_count(),
        "pinned": args.pin,
        "load_before": round(load_before[0], 2),
        "load_after": round(load_after[0], 2),
        "one_node": {k: round(v, 3) for k, v in one.items()},
        "two_nodes": {k: round(v, 3) for k, v in two.items()},
        "throughput_ratio": round(ratio, 3),
    }
    print("SCALEOUT_SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    main()
