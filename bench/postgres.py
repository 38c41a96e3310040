"""The PostgreSQL store against embedded SQLite: same machine, same data, side by side.

    .venv/bin/python bench/postgres.py                  # 10,000 memories, 3 rounds
    .venv/bin/python bench/postgres.py --n 2000 --rounds 2

A throwaway PostgreSQL 15 cluster (``tests/pgcluster.py``, ``fsync=on``: commits pay the real WAL
flush, as SQLite pays ``synchronous=FULL``) and a temp data dir are pre-filled with the same
``--n`` memories of one agent (same texts, same MiniLM-derived vectors; ``bench/latency.py``
``prefill``). Two ``dakera-server serve`` processes run at once, one per backend. Each round, in
alternating order so load drifts hit both alike, measures through the SDK on each server: 100
``store_memory`` calls and 200 ``recall(top_k=10)`` calls (the agent is loaded, i.e. cached, as
it is after start-up). A store-layer measure without HTTP or embedding follows: 300 single-memory
``Store.write`` commits on each backend.

Targets (issue 13): recall p50 on PostgreSQL ≤ 1.2× SQLite, store p50 ≤ 1.5×. Prints a markdown
table with the load average before and after, and ``POSTGRES_SUMMARY {json}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dakera import DakeraClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import ROOT_KEY  # noqa: E402
from tests.pgcluster import PostgresCluster  # noqa: E402
from tests.processes import ServerProcess, spawn_server  # noqa: E402

from bench.latency import pct, prefill  # noqa: E402
from bench.textgen import memory_texts, queries  # noqa: E402

STORES, RECALLS, COMMITS = 100, 200, 300
AGENT = "bench"


def measure(server: ServerProcess, round_index: int) -> tuple[list[float], list[float]]:
    """Store and recall latencies (ms) of one round on one server."""
    client = DakeraClient(server.url, api_key=ROOT_KEY, timeout=120)
    try:
        store_ms = []
        for text in memory_texts(STORES, seed=100 + round_index):
            started = time.perf_counter()
            client.store_memory(AGENT, text)
            store_ms.append((time.perf_counter() - started) * 1000)
        recall_ms = []
        for query in queries(RECALLS, seed=200 + round_index):
            started = time.perf_counter()
            client.recall(AGENT, query, top_k=10)
            recall_ms.append((time.perf_counter() - started) * 1000)
    finally:
        client.close()
    return store_ms, recall_ms


def commit_latency(storage_url: str | None, data_dir: Path) -> list[float]:
    """Single-memory commits straight on the store (no HTTP, no embedding), in ms."""
    from dakera_server.storage.base import Op
    from dakera_server.storage.factory import open_store

    store = open_store(storage_url, data_dir)
    payload, vector = os.urandom(600), os.urandom(1536)
    timings = []
    try:
        for i in range(COMMITS):
            started = time.perf_counter()
            store.write(
                [Op.put("memories", f"commit-{i}", payload, group="commits", vector=vector)]
            )
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        store.close()
    return timings


@contextlib.contextmanager
def bench_database(name: str) -> Iterator[tuple[str, Path, Any]]:
    """A throwaway PostgreSQL cluster (``fsync=on``) with database ``name``, a temp work dir,
    and the real MiniLM vectors ``prefill`` re-uses: ``(url, work, base)``; all removed after.
    Shared with ``bench/scaleout.py``."""
    from dakera_server.engine.text.providers import create_provider

    cluster = PostgresCluster(fsync=True)
    cluster.start()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            url = cluster.url(cluster.create_database(name))
            base = create_provider("builtin").embed(memory_texts(2000, seed=5)).vectors
            yield url, Path(tmp), base
        finally:
            cluster.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    load_before = os.getloadavg()
    with bench_database("bench") as (url, work, base):
        prefill(work / "sqlite", AGENT, args.n, base)
        prefill(work / "pg-node", AGENT, args.n, base, storage_url=url)
        servers = {
            "sqlite": spawn_server(work / "sqlite", work / "sqlite.log"),
            "postgres": spawn_server(work / "pg-node", work / "pg.log", DAKERA_STORAGE_URL=url),
        }
        stores: dict[str, list[float]] = {name: [] for name in servers}
        recalls: dict[str, list[float]] = {name: [] for name in servers}
        try:
            for round_index in range(args.rounds):
                order = list(servers) if round_index % 2 == 0 else list(servers)[::-1]
                for name in order:
                    store_ms, recall_ms = measure(servers[name], round_index)
                    stores[name] += store_ms
                    recalls[name] += recall_ms
        finally:
            for server in servers.values():
                server.stop()
        commits = {
            "sqlite": commit_latency(None, work / "commits"),
            "postgres": commit_latency(url, work / "unused"),
        }
    load_after = os.getloadavg()
    rows = {
        "store p50 (ms)": {k: statistics.median(v) for k, v in stores.items()},
        "store p95 (ms)": {k: pct(v, 0.95) for k, v in stores.items()},
        "recall p50 (ms)": {k: statistics.median(v) for k, v in recalls.items()},
        "recall p95 (ms)": {k: pct(v, 0.95) for k, v in recalls.items()},
        "commit p50 (ms)": {k: statistics.median(v) for k, v in commits.items()},
        "commit p95 (ms)": {k: pct(v, 0.95) for k, v in commits.items()},
    }
    print(
        f"{args.n} memories in one agent, {args.rounds} rounds, load average before "
        f"{load_before[0]:.2f} / after {load_after[0]:.2f} (1 min)"
    )
    print("| measure | SQLite | PostgreSQL | ratio |\n|---|---|---|---|")
    for measure_name, values in rows.items():
        ratio = values["postgres"] / values["sqlite"]
        print(
            f"| {measure_name} | {values['sqlite']:.2f} | {values['postgres']:.2f} | {ratio:.2f}× |"
        )
    summary = {
        "n": args.n,
        "rounds": args.rounds,
        "load_before": round(load_before[0], 2),
        "load_after": round(load_after[0], 2),
        **{
            f"{name} {backend}": round(value, 3)
            for name, values in rows.items()
            for backend, value in values.items()
        },
    }
    print("POSTGRES_SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    main()
