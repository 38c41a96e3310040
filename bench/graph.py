"""Issue 7 (graph) performance: traversal latency, what the graph adds to a store, start-up cost.

Run (servers and engines in this process, data in a temp dir):

    .venv/bin/python bench/graph.py                              # 2,000 memories; start-up 100,000
    .venv/bin/python bench/graph.py --n 1000 --startup-n 20000   # quicker

Target (issue 7): graph traversal of depth 2 from a memory with 50 edges ≤ 10 ms. Measured three
ways: the engine call alone, ``GET /v1/memories/{id}/graph?depth=2`` over HTTP (httpx, includes
JSON), and the SDK's ``memory_graph``. "typical": the root has 50 links and its neighbours keep
the edges the store hooks gave them; "dense": every neighbour has 50 edges too (~2,500 nodes).
The machine has 2 cores shared with other developers: numbers are noisy.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from dakera import DakeraClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import ROOT_KEY, start_server  # noqa: E402

from bench.textgen import memory_texts  # noqa: E402
from dakera_server.config import Settings  # noqa: E402
from dakera_server.engine.core import Engine  # noqa: E402
from dakera_server.engine.entities.extractor import RuleExtractor  # noqa: E402
from dakera_server.engine.graph.model import SYSTEM, Edge  # noqa: E402
from dakera_server.engine.graph.queries import traverse  # noqa: E402
from dakera_server.engine.memory.models import Memory  # noqa: E402
from dakera_server.engine.memory.writes import NewMemory, new_memory_id  # noqa: E402
from dakera_server.engine.text.embedding import EmbeddingProvider  # noqa: E402
from dakera_server.engine.text.providers import create_provider  # noqa: E402
from dakera_server.storage.base import Op  # noqa: E402
from dakera_server.storage.sqlite import SqliteStore  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(call: Callable[[], Any], runs: int) -> list[float]:
    call()  # warm
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000.0)
    return samples


def bench_traversal(n: int, work: Path, embedder: EmbeddingProvider) -> list[dict[str, Any]]:
    running = start_server(work / "traversal", embedder)
    rows: list[dict[str, Any]] = []
    try:
        engine = running.engine
        texts = memory_texts(n, seed=21)
        ids: list[str] = []
        for start in range(0, n, 500):
            items = [NewMemory(agent_id="graph", content=t) for t in texts[start : start + 500]]
            ids += [m.id for m in engine.memories.store(SYSTEM, items).memories]
        rng = random.Random(5)
        root, others = ids[0], ids[1:]
        now = int(time.time())
        neighbours = rng.sample(others, 50)
        engine.graph.add_edges("graph", [Edge(root, o, "linked_by", 1.0, now) for o in neighbours])
        graph = engine.graph.graph("graph")
        assert graph is not None
        natural = statistics.mean(len(graph.adjacency.get(i, {})) for i in ids)
        with running.http() as http, DakeraClient(running.url, api_key=ROOT_KEY) as sdk:
            for scenario in ("typical", "dense"):
                if scenario == "dense":
                    for node in neighbours:
                        missing = 50 - len(graph.adjacency.get(node, {}))
                        targets = rng.sample(others, max(0, missing))
                        edges = [Edge(node, t, "linked_by", 1.0, now) for t in targets if t != node]
                        engine.graph.add_edges("graph", edges)
                view = traverse(engine.graph, SYSTEM, root, 2)
                engine_ms = timed(lambda: traverse(engine.graph, SYSTEM, root, 2), 300)
                http_ms = timed(lambda: http.get(f"/v1/memories/{root}/graph?depth=2"), 200)
                sdk_ms = timed(lambda: sdk.memory_graph(root, depth=2), 100)
                rows.append(
                    {
                        "scenario": scenario,
                        "root_edges": len(graph.adjacency[root]),
                        "mean_edges_per_memory": round(natural, 1),
                        "nodes_depth2": len(view.nodes),
                        "engine_p50_ms": statistics.median(engine_ms),
                        "engine_p95_ms": pct(engine_ms, 0.95),
                        "http_p50_ms": statistics.median(http_ms),
                        "http_p95_ms": pct(http_ms, 0.95),
                        "sdk_p50_ms": statistics.median(sdk_ms),
                        "sdk_p95_ms": pct(sdk_ms, 0.95),
                    }
                )
        rows.append(bench_store_overhead(engine, texts))
    finally:
        running.stop()
    return rows


def bench_store_overhead(engine: Engine, texts: list[str]) -> dict[str, Any]:
    """Single-memory store with and without the graph hooks, alternating (same process)."""
    hooks = list(engine.memories.on_indexed)
    with_ms, without_ms = [], []
    for i, text in enumerate(memory_texts(200, seed=77)):
        on = i % 2 == 0
        engine.memories.on_indexed[:] = hooks if on else []
        started = time.perf_counter()
        engine.memories.store(SYSTEM, [NewMemory(agent_id="graph", content=text)])
        (with_ms if on else without_ms).append((time.perf_counter() - started) * 1000.0)
    batch_s = {}
    for on, seed in ((False, 78), (True, 79)):
        engine.memories.on_indexed[:] = hooks if on else []
        items = [NewMemory(agent_id="graph", content=t) for t in memory_texts(500, seed=seed)]
        started = time.perf_counter()
        engine.memories.store(SYSTEM, items)
        batch_s[on] = time.perf_counter() - started
    engine.memories.on_indexed[:] = hooks
    agent = engine.memories.agent(SYSTEM, "graph")
    assert agent is not None
    memory = next(iter(agent.memories.values()))
    vector = agent.vectors.get_vector(memory.id)
    assert vector is not None
    hook_ms = timed(lambda: engine.graph.memories_indexed([memory], vector.reshape(1, -1)), 200)
    return {
        "scenario": "store (engine, incl. embedding)",
        "store_with_graph_p50_ms": statistics.median(with_ms),
        "store_without_graph_p50_ms": statistics.median(without_ms),
        "graph_hook_alone_p50_ms": statistics.median(hook_ms),
        "graph_hook_alone_p95_ms": pct(hook_ms, 0.95),
        "batch500_with_graph_s": batch_s[True],
        "batch500_without_graph_s": batch_s[False],
    }


def fill_store(data_dir: Path, n: int, base: np.ndarray) -> list[str]:
    store = SqliteStore(data_dir / "dakera.db")
    rng = np.random.default_rng(3)
    texts = memory_texts(n, seed=5)
    now = int(time.time())
    ids = []
    for i in range(0, n, 5000):
        ops = []
        for j in range(i, min(n, i + 5000)):
            vector = base[j % len(base)] + rng.normal(0, 0.02, base.shape[1])
            vector = (vector / np.linalg.norm(vector)).astype(np.float32)
            memory = Memory(
                id=new_memory_id(), agent_id="big", content=texts[j], created_at=now + j
            )
            ids.append(memory.id)
            ops.append(
                Op.put("memories", memory.id, memory.to_payload(), group="big",
                       vector=vector.tobytes())
            )  # fmt: skip
        store.write(ops)
    store.close()
    return ids


def add_edges(data_dir: Path, ids: list[str], per_memory: int, embedder: EmbeddingProvider) -> int:
    """Give every memory ``per_memory`` random outgoing edges through the engine (persisted)."""
    engine = Engine(Settings(data_dir=data_dir, root_api_key=ROOT_KEY), embedder=embedder)
    engine.memories.load()
    engine.graph.load()
    rng = random.Random(9)
    for start in range(0, len(ids), 5000):
        edges = [
            Edge(memory_id, other, "shares_entity", 0.9, 0, "Anna")
            for memory_id in ids[start : start + 5000]
            for other in rng.sample(ids, per_memory)
            if other != memory_id
        ]
        engine.graph.add_edges("big", edges)
    graph = engine.graph.graph("big")
    engine.store.close()
    return 0 if graph is None else len(graph.edges)


def timed_load(data_dir: Path, embedder: EmbeddingProvider) -> dict[str, float]:
    settings = Settings(data_dir=data_dir, root_api_key=ROOT_KEY)
    engine = Engine(settings, embedder=embedder)
    started = time.perf_counter()
    engine.memories.load()
    memories_s = time.perf_counter() - started
    started = time.perf_counter()
    engine.entities.load()
    edges, extracted = engine.graph.load()
    graph_s = time.perf_counter() - started
    engine.store.close()
    return {"memories_load_s": memories_s, "graph_load_s": graph_s, "edges": edges,
            "extracted_now": extracted}  # fmt: skip


def bench_startup(n: int, work: Path, embedder: EmbeddingProvider) -> list[dict[str, Any]]:
    data_dir = work / "startup"
    base = embedder.embed(memory_texts(2000, seed=5)).vectors
    ids = fill_store(data_dir, n, base)
    upgrade = timed_load(data_dir, embedder)  # no entity rows yet: extracts and persists them
    edges = add_edges(data_dir, ids, 3, embedder)
    steady = timed_load(data_dir, embedder)
    extract = RuleExtractor()
    texts = memory_texts(2000, seed=5)
    per_text = statistics.median(timed(lambda: [extract.extract(t) for t in texts], 5)) / 2000
    store = SqliteStore(data_dir / "dakera.db")
    sample = store.get_row("edges", ids[0], group="big")
    rows = store.count("edges", "big")
    store.close()
    assert sample is not None and len(orjson.loads(sample.payload)["edges"]) in (2, 3)
    steady["rows"] = rows
    return [
        {"scenario": f"start-up, {n} memories, no entity rows (upgrade)", **upgrade},
        {"scenario": f"start-up, {n} memories, entities + {edges} edges persisted", **steady},
        {"scenario": "rule extractor per generated memory", "extract_ms": per_text},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--startup-n", type=int, default=100_000)
    args = parser.parse_args()
    embedder = create_provider("builtin")
    with tempfile.TemporaryDirectory() as tmp:
        rows = bench_traversal(args.n, Path(tmp), embedder)
        rows += bench_startup(args.startup_n, Path(tmp), embedder)
    for row in rows:
        print("| " + " | ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in row.items()) + " |")  # fmt: skip
    print("SUMMARY " + json.dumps(rows, default=str))


if __name__ == "__main__":
    main()
