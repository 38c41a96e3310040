"""Store and recall latency (p50/p95/p99) and throughput through the SDK at 1k, 10k and 100k
memories in one agent, with and without encryption at rest, plus a plot against store size.

With its own servers (the full comparison; needs ``pip install -e '.[bench]'`` for the plot):

    .venv/bin/python bench/latency.py --spawn
    .venv/bin/python bench/latency.py --spawn --sizes 1000,10000     # quicker

For each mode (plain, encrypted) and size N a fresh data dir is pre-filled with N memories through
the storage layer (generated sentences from ``bench/textgen.py``; vectors are real MiniLM
embeddings of 5,000 of them, re-used with small noise past that, because embedding 100k texts
server-side takes longer than the measurement). The server is then started on it (with
``DAKERA_ENCRYPTION_KEY`` set it encrypts the pre-filled store in place at start) and measured
through the SDK: 200 single ``store_memory`` calls, 4 batches of 500 with
``store_memories_batch`` (memories/s), 300 sequential ``recall(top_k=10)`` calls, and recall
throughput with 4 client threads.

Against a running server (``make run``; its encryption is whatever it was started with; the
root key it printed at first start, or DAKERA_ROOT_API_KEY; ``--url`` defaults to port 3300):

    .venv/bin/python bench/latency.py --api-key dk_... --sizes 1000,10000

fills one fresh agent through the SDK (batch store) up to each size and measures the same way
(each measurement adds 2,200 memories; the table gives the count at measurement time; the server's
own rate limit applies to the threaded recalls).

Prints a markdown table, writes it with ``--out``, saves the plot with ``--plot``, and ends with
``LATENCY_SUMMARY {json}``. 2 shared cores: numbers are noisy, compare them within one run.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from dakera import DakeraClient
from dakera.models import BatchStoreMemoryItem, BatchStoreMemoryRequest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.textgen import memory_texts, queries  # noqa: E402

ENCRYPTION_KEY = "bench-latency-passphrase-0123456789"
BASE_EMBEDDED = 5000
STORES, BATCHES, BATCH_SIZE, RECALLS, THREADS = 200, 4, 500, 300, 4


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def prefill(
    data_dir: Path, agent_id: str, n: int, base: np.ndarray, storage_url: str | None = None
) -> None:
    """Write ``n`` memories of ``agent_id`` straight into a new store under ``data_dir`` (or the
    PostgreSQL database at ``storage_url``)."""
    from dakera_server.engine.memory.models import Memory
    from dakera_server.engine.memory.writes import new_memory_id
    from dakera_server.storage.base import Op
    from dakera_server.storage.factory import open_store

    store = open_store(storage_url, data_dir)
    rng = np.random.default_rng(3)
    texts = memory_texts(n, seed=5)
    now = int(time.time())
    for start in range(0, n, 5000):
        ops = []
        for j in range(start, min(n, start + 5000)):
            vector = base[j % len(base)]
            if j >= len(base):
                vector = vector + rng.normal(0, 0.02, vector.shape[0])
            vector = (vector / np.linalg.norm(vector)).astype(np.float32)
            memory = Memory(
                id=new_memory_id(),
                agent_id=agent_id,
                content=texts[j],
                created_at=now,
                updated_at=now,
                last_accessed_at=now,
            )
            ops.append(
                Op.put(
                    "memories",
                    memory.id,
                    memory.to_payload(),
                    group=agent_id,
                    vector=vector.tobytes(),
                )
            )
        store.write(ops)
    store.close()


BACKFILL_STARTED = re.compile(r"extracting the entities of \d+ memories in the background")
BACKFILL_DONE = re.compile(r"entity backfill: \d+ of \d+ memories in ([\d.]+) s")


def wait_for_line(log: Path, pattern: re.Pattern[str], timeout: float) -> re.Match[str] | None:
    """Poll a server log until ``pattern`` appears (None after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = pattern.search(log.read_text(errors="replace"))
        if match is not None:
            return match
        time.sleep(0.1)
    return None


def wait_for_backfill(log: Path, timeout: float = 600.0) -> None:
    """A pre-filled store has no derived rows: above 20,000 memories the server extracts their
    entities in the background after ready, and a store waits for that. Measure after it."""
    if BACKFILL_STARTED.search(log.read_text(errors="replace")):
        wait_for_line(log, BACKFILL_DONE, timeout)


def fill_via_sdk(client: DakeraClient, agent_id: str, have: int, want: int) -> float:
    """Batch-store generated memories until the agent holds ``want``; returns memories/s."""
    texts = memory_texts(want, seed=5)[have:]
    started = time.perf_counter()
    for start in range(0, len(texts), 1000):
        client.store_memories_batch(
            BatchStoreMemoryRequest(
                agent_id=agent_id,
                memories=[BatchStoreMemoryItem(content=t) for t in texts[start : start + 1000]],
            )
        )
    elapsed = time.perf_counter() - started
    return len(texts) / elapsed if texts else 0.0


def measure(client: DakeraClient, agent_id: str, seed: int) -> dict[str, float]:
    """Single stores, batch store throughput, sequential recalls and threaded recall QPS."""
    store_ms = []
    for text in memory_texts(STORES, seed=1000 + seed):
        t0 = time.perf_counter()
        client.store_memory(agent_id, text)
        store_ms.append((time.perf_counter() - t0) * 1000)
    extra = memory_texts(BATCHES * BATCH_SIZE, seed=2000 + seed)
    t0 = time.perf_counter()
    for start in range(0, len(extra), BATCH_SIZE):
        client.store_memories_batch(
            BatchStoreMemoryRequest(
                agent_id=agent_id,
                memories=[
                    BatchStoreMemoryItem(content=t) for t in extra[start : start + BATCH_SIZE]
                ],
            )
        )
    batch_rate = len(extra) / (time.perf_counter() - t0)
    asked = queries(RECALLS, seed=seed)
    recall_ms = []
    for query in asked:
        t0 = time.perf_counter()
        client.recall(agent_id, query, top_k=10)
        recall_ms.append((time.perf_counter() - t0) * 1000)
    qps = threaded_recalls(client, agent_id, asked)
    return {
        "store_p50_ms": statistics.median(store_ms),
        "store_p95_ms": pct(store_ms, 0.95),
        "store_p99_ms": pct(store_ms, 0.99),
        "stores_per_s": 1000.0 / statistics.mean(store_ms),
        "batch_store_per_s": batch_rate,
        "recall_p50_ms": statistics.median(recall_ms),
        "recall_p95_ms": pct(recall_ms, 0.95),
        "recall_p99_ms": pct(recall_ms, 0.99),
        "recall_qps_4_threads": qps,
    }


def threaded_recalls(client: DakeraClient, agent_id: str, asked: list[str]) -> float:
    """Recalls per second with ``THREADS`` clients sharing the query list."""
    url, key = client.base_url, client.api_key
    chunks = [asked[i::THREADS] for i in range(THREADS)]

    def worker(chunk: list[str]) -> None:
        own = DakeraClient(url, api_key=key, timeout=120)
        for query in chunk:
            own.recall(agent_id, query, top_k=10)
        own.close()

    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(asked) / (time.perf_counter() - t0)


def run_spawned(
    sizes: list[int],
    work: Path,
    modes: tuple[str, ...] = ("plain", "encrypted"),
    extra_env: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Pre-filled data dirs, one server per (mode, size); ``extra_env`` goes to every server
    (A/B runs: ``--env DAKERA_EMBEDDING_THREADS=1``)."""
    from tests.conftest import ROOT_KEY
    from tests.processes import spawn_server

    from dakera_server.engine.text.providers import create_provider

    base = create_provider("builtin").embed(memory_texts(BASE_EMBEDDED, seed=5)).vectors
    rows = []
    for mode in modes:
        for size in sizes:
            data_dir = work / f"{mode}-{size}"
            prefill(data_dir, "bench", size, base)
            # The global rate limit (100 req/s by default) would cap the threaded recalls.
            env = {"RATE_LIMIT_RPS": "0", **(extra_env or {})}
            if mode == "encrypted":
                env["DAKERA_ENCRYPTION_KEY"] = ENCRYPTION_KEY
            started = time.perf_counter()
            log = work / f"{mode}-{size}.log"
            server = spawn_server(data_dir, log, **env)
            startup = time.perf_counter() - started
            wait_for_backfill(log)
            try:
                client = DakeraClient(server.url, api_key=ROOT_KEY, timeout=600)
                row = {"mode": mode, "memories": size, "startup_s": startup}
                row.update(measure(client, "bench", seed=size))
                client.close()
            finally:
                server.stop()
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def run_remote(url: str, key: str | None, sizes: list[int]) -> list[dict[str, Any]]:
    """One fresh agent on a running server, filled through the SDK."""
    client = DakeraClient(url, api_key=key, timeout=600)
    agent_id = f"bench-latency-{secrets.token_hex(3)}"
    rows, have = [], 0
    for size in sorted(sizes):
        rate = 0.0
        if size > have:
            rate = fill_via_sdk(client, agent_id, have, size)
            have = size
        # The measured count: a size already passed (by the writes of measure()) is not refilled.
        row = {"mode": "as configured", "memories": have, "fill_per_s": rate}
        row.update(measure(client, agent_id, seed=size))
        # measure() stored STORES + BATCHES * BATCH_SIZE more; the next fill counts them.
        have += STORES + BATCHES * BATCH_SIZE
        print(json.dumps(row), flush=True)
        rows.append(row)
    client.close()
    return rows


COLUMNS = (
    "store_p50_ms",
    "store_p95_ms",
    "store_p99_ms",
    "batch_store_per_s",
    "recall_p50_ms",
    "recall_p95_ms",
    "recall_p99_ms",
    "recall_qps_4_threads",
)


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table, one row per (mode, size)."""
    lines = [
        "| mode | memories | " + " | ".join(COLUMNS) + " |",
        "|---|---:|" + "---:|" * len(COLUMNS),
    ]
    for row in rows:
        cells = " | ".join(f"{row[c]:.1f}" for c in COLUMNS)
        lines.append(f"| {row['mode']} | {row['memories']:,} | {cells} |")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Latency percentiles against store size, one line per (operation, percentile, mode)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=False)
    for axis, operation in zip(axes, ("store", "recall"), strict=True):
        for mode, style in (("plain", "-"), ("encrypted", "--"), ("as configured", "-")):
            mine = [r for r in rows if r["mode"] == mode]
            if not mine:
                continue
            sizes = [r["memories"] for r in mine]
            for q, marker in (("p50", "o"), ("p95", "s"), ("p99", "^")):
                values = [r[f"{operation}_{q}_ms"] for r in mine]
                axis.plot(sizes, values, style, marker=marker, label=f"{q} {mode}")
        axis.set_xscale("log")
        axis.set_xlabel("memories in the agent")
        axis.set_ylabel("ms through the SDK (HTTP)")
        axis.set_title(f"{operation} latency")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:3300")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--spawn", action="store_true", help="start pre-filled servers")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--modes", default="plain,encrypted", help="with --spawn")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE, with --spawn")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.spawn:
        env = dict(item.split("=", 1) for item in args.env)
        with tempfile.TemporaryDirectory() as tmp:
            rows = run_spawned(sizes, Path(tmp), tuple(args.modes.split(",")), env)
    else:
        rows = run_remote(args.url, args.api_key, sizes)
    text = table(rows)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    if args.plot is not None:
        plot(rows, args.plot)
    summary = [{k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()} for r in rows]
    print("LATENCY_SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    main()
