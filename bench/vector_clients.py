"""Vector namespaces through the official clients: dakera SDK → dakera-server against the
chromadb client → Chroma's own server, same vectors, same run (issue 18).

    .venv/bin/pip install -e '.[bench]'                    # chromadb 1.5.9 (client and server)
    .venv/bin/python bench/vectors.py --official-clients   # calls run() below
    .venv/bin/python bench/vector_clients.py --n 20000     # the same, on its own

Both servers run as subprocesses on loopback (``dakera-server serve`` with gRPC and rate limits
off; ``chroma run --path <tmp>``), each in a temp dir. Upserts go through ``DakeraClient.upsert``
and ``Collection.add`` in batches of 1,000. Queries go through ``DakeraClient.query`` (top 10,
no metadata) and ``Collection.query`` (``n_results=10``, ``include=[]``) from 2 client threads,
each with its own client object (keep-alive connections). Recall@10 is against exact cosine over
the same vectors.

Wall-clock queries/s measures the client as much as the server on 2 shared cores (the SDKs'
own JSON and model parsing run in this process), so the table also gives **server CPU per
query and per upserted vector**: utime + stime of the server's process tree from ``/proc``
over the phase, divided by the work done. That is the comparison the clients cannot blur.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import ROOT_KEY  # noqa: E402
from tests.processes import free_port, spawn_server  # noqa: E402

from bench.load import tree_cpu_seconds  # noqa: E402
from bench.vectors import BATCH, K, concurrent, recall  # noqa: E402

F32 = npt.NDArray[np.float32]


class Phase:
    """Wall time and server CPU over a ``with`` block."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.wall = self.cpu = 0.0

    def __enter__(self) -> Phase:
        self._wall, self._cpu = time.perf_counter(), tree_cpu_seconds(self.pid)
        return self

    def __exit__(self, *_: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = tree_cpu_seconds(self.pid) - self._cpu


def measure(
    pid: int,
    upsert: Callable[[list[str], F32], None],
    make_query_client: Callable[[], Any],
    run_one: Callable[[Any, int], list[int]],
    data: F32,
    queries: F32,
    truth: npt.NDArray[np.int64],
    settle: Callable[[], None],
) -> dict[str, float]:
    """The same phases for either server."""
    ids = [str(i) for i in range(len(data))]
    with Phase(pid) as up:
        for start in range(0, len(data), BATCH):
            upsert(ids[start : start + BATCH], data[start : start + BATCH])
    with Phase(pid) as indexed:
        settle()
    concurrent(run_one, make_query_client, 200)  # warm-up
    with Phase(pid) as single:
        _, lat1, _ = concurrent(run_one, make_query_client, len(queries), threads=1)
    with Phase(pid) as two:
        _, lat2, results = concurrent(run_one, make_query_client, 2 * len(queries))
    return {
        "upsert vectors/s through the client": len(data) / up.wall,
        "server CPU µs per upserted vector (incl. indexing)": (up.cpu + indexed.cpu)
        / len(data)
        * 1e6,
        "query p50 ms, 1 thread": statistics.median(lat1),
        "query p50 ms, 2 threads": statistics.median(lat2),
        "queries/s, 2 threads": 2 * len(queries) / two.wall,
        "server CPU ms per query (2 threads)": two.cpu / (2 * len(queries)) * 1e3,
        "server CPU ms per query (1 thread)": single.cpu / len(queries) * 1e3,
        "server cores busy (2 threads)": two.cpu / two.wall,
        "recall@10 vs exact": recall(results[: len(queries)], truth),
    }


def bench_dakera_sdk(data: F32, queries: F32, truth: npt.NDArray[np.int64]) -> dict[str, float]:
    from dakera import DakeraClient

    env = {"DAKERA_GRPC_ENABLED": "false", "RATE_LIMIT_RPS": "0"}
    with tempfile.TemporaryDirectory() as tmp:
        server = spawn_server(Path(tmp) / "data", Path(tmp) / "server.log", **env)
        headers = {"Authorization": f"Bearer {ROOT_KEY}"}
        try:
            writer = DakeraClient(server.url, api_key=ROOT_KEY, timeout=600)

            def upsert(ids: list[str], rows: F32) -> None:
                writer.upsert(
                    "bench",
                    [{"id": i, "values": r.tolist()} for i, r in zip(ids, rows, strict=True)],
                )

            def settle() -> None:
                """Until the background indexer has moved every vector into the graph (a
                field the SDK's model does not keep, so read over plain HTTP)."""
                with httpx.Client(base_url=server.url, headers=headers) as http:
                    while http.get("/v1/namespaces/bench").json()["index_pending"]:
                        time.sleep(0.05)

            query_lists = [q.tolist() for q in queries]

            def run_one(client: Any, i: int) -> list[int]:
                answer = client.query(
                    "bench", query_lists[i % len(query_lists)], top_k=K, include_metadata=False
                )
                return [int(r.id) for r in answer.results]

            return measure(
                server.process.pid,
                upsert,
                lambda: DakeraClient(server.url, api_key=ROOT_KEY, timeout=60),
                run_one,
                data,
                queries,
                truth,
                settle,
            )
        finally:
            server.stop()


def bench_chroma_server(
    data: F32, queries: F32, truth: npt.NDArray[np.int64]
) -> dict[str, float] | str:
    try:
        import chromadb
    except ImportError:
        return "chromadb is not installed (pip install -e '.[bench]')"
    chroma = Path(sys.executable).with_name("chroma")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        log = open(Path(tmp) / "chroma.log", "wb")  # closed in the finally below
        process = subprocess.Popen(
            [
                str(chroma),
                "run",
                "--path",
                str(Path(tmp) / "db"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    chromadb.HttpClient(host="127.0.0.1", port=port).heartbeat()
                    break
                except Exception:
                    if time.monotonic() > deadline or process.poll() is not None:
                        return f"chroma server did not start: {process.poll()}"
                    time.sleep(0.2)
            writer = chromadb.HttpClient(host="127.0.0.1", port=port)
            collection = writer.create_collection("bench", metadata={"hnsw:space": "cosine"})

            def upsert(ids: list[str], rows: F32) -> None:
                collection.add(ids=ids, embeddings=rows)

            def make() -> Any:
                return chromadb.HttpClient(host="127.0.0.1", port=port).get_collection("bench")

            def run_one(handle: Any, i: int) -> list[int]:
                answer = handle.query(
                    query_embeddings=[queries[i % len(queries)]], n_results=K, include=[]
                )
                return [int(x) for x in answer["ids"][0]]

            return measure(process.pid, upsert, make, run_one, data, queries, truth, lambda: None)
        finally:
            process.terminate()  # this process only, by its id
            process.wait(timeout=30)
            log.close()


def run(data: F32, queries: F32, truth: npt.NDArray[np.int64]) -> str:
    """Both servers, one after the other on the same data; a markdown table."""
    load = os.getloadavg()[0]
    ours = bench_dakera_sdk(data, queries, truth)
    theirs = bench_chroma_server(data, queries, truth)
    lines = [
        f"{len(data)} vectors x {data.shape[1]}, top_k={K}, load average {load:.1f} → "
        f"{os.getloadavg()[0]:.1f}",
        "",
        "| metric | dakera-server via dakera SDK | Chroma server via chromadb | ratio |",
        "|---|---:|---:|---:|",
    ]
    for metric, value in ours.items():
        other = theirs.get(metric) if isinstance(theirs, dict) else None
        ratio = f"{value / other:.2f}" if other else "-"
        lines.append(
            f"| {metric} | {value:.3f} | {'-' if other is None else f'{other:.3f}'} | {ratio} |"
        )
    if isinstance(theirs, str):
        lines.append(f"\nchroma: {theirs}")
    return "\n".join(lines)


def main() -> None:
    from bench.vectors import exact_top_k, load

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    data, queries = load(args.n)
    print(run(data, queries, exact_top_k(data, queries)))


if __name__ == "__main__":
    main()
