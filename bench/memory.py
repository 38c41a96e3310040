"""Issue 2 performance: store/recall latency through the SDK, batch throughput, start-up time.

Run (server started by the script as a subprocess on a free port, data in a temp dir):

    .venv/bin/python bench/memory.py                 # 10,000 memories, 100,000 for start-up
    .venv/bin/python bench/memory.py --n 2000 --startup-n 20000   # quicker

Start-up (time to ``/health/ready``) is measured twice on the same 100k data dir: the first start
builds every index (the HNSW graph and the entities of these pre-filled memories, which have no
derived rows, are built in the background after ready), the restart after a clean shutdown loads
snapshots. ``bench/startup.py`` gives the per-phase times and the crash (``kill -9``) case.

Targets (issue 2, 2 cores): single store p50 ≤ 15 ms, batch store ≥ 200 memories/s, recall p50 ≤
15 ms and p95 ≤ 30 ms over HTTP through the SDK with 10,000 memories in one agent, start-up with
100,000 memories ≤ 20 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from dakera import DakeraClient
from dakera.models import BatchStoreMemoryItem, BatchStoreMemoryRequest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import ROOT_KEY  # noqa: E402
from tests.processes import spawn_server  # noqa: E402

from bench.latency import pct, prefill  # noqa: E402
from bench.textgen import memory_texts, queries  # noqa: E402


def bench_live(n: int, work: Path, **env: str) -> dict[str, float]:
    """Batch-store ``n`` memories into a fresh server (500 per call), then time 200 single
    stores and 300 recalls; ``env`` is extra server environment (A/B runs)."""
    name = "live" + "".join(f"-{k}={v}" for k, v in sorted(env.items()))
    server = spawn_server(work / name, work / f"{name}.log", **env)
    try:
        client = DakeraClient(server.url, api_key=ROOT_KEY, timeout=120)
        texts = memory_texts(n)
        started = time.perf_counter()
        for i in range(0, n, 500):
            client.store_memories_batch(
                BatchStoreMemoryRequest(
                    agent_id="bench",
                    memories=[BatchStoreMemoryItem(content=t) for t in texts[i : i + 500]],
                )
            )
        batch_rate = n / (time.perf_counter() - started)
        store_ms = []
        for text in memory_texts(200, seed=99):
            t0 = time.perf_counter()
            client.store_memory("bench", text)
            store_ms.append((time.perf_counter() - t0) * 1000)
        recall_ms = []
        for query in queries(300):
            t0 = time.perf_counter()
            client.recall("bench", query, top_k=10)
            recall_ms.append((time.perf_counter() - t0) * 1000)
        client.close()
    finally:
        server.stop()
    return {
        "memories": n,
        "batch_store_per_s": batch_rate,
        "store_p50_ms": statistics.median(store_ms),
        "store_p95_ms": pct(store_ms, 0.95),
        "recall_p50_ms": statistics.median(recall_ms),
        "recall_p95_ms": pct(recall_ms, 0.95),
    }


def bench_startup(n: int, work: Path, base_vectors: np.ndarray) -> dict[str, float]:
    """Fill a data dir with ``n`` memories directly (vectors: real MiniLM embeddings of
    generated text, re-used with small noise past the embedded set), then time start-up."""
    data_dir = work / "startup"
    prefill(data_dir, "big", n, base_vectors)
    # First start: no snapshot, no derived data yet (indexes, entities, graph built from the
    # store). Second start: what a restart after a clean shutdown costs.
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        server = spawn_server(data_dir, work / "startup.log")
        timings.append(time.perf_counter() - started)
        server.stop()
    return {"startup_memories": n, "first_start_s": timings[0], "restart_s": timings[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--startup-n", type=int, default=100_000)
    parser.add_argument("--skip-live", action="store_true", help="only the start-up measure")
    args = parser.parse_args()
    from dakera_server.engine.text.providers import create_provider

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        live = {} if args.skip_live else bench_live(args.n, work)
        base = create_provider("builtin").embed(memory_texts(5000, seed=5)).vectors
        startup = bench_startup(args.startup_n, work, base)
    result = {**live, **startup}
    print("| measure | value |\n|---|---|")
    for key, value in result.items():
        print(f"| {key} | {value:.2f} |" if isinstance(value, float) else f"| {key} | {value} |")
    print("SUMMARY " + json.dumps({k: round(v, 3) for k, v in result.items()}))


if __name__ == "__main__":
    main()
