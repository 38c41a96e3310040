"""Start-up time with many memories: time to ``/health/ready`` and the engine's load phases.

    .venv/bin/python bench/startup.py                    # 100,000 memories in one agent
    .venv/bin/python bench/startup.py --n 20000          # quicker

A fresh data dir is pre-filled through the storage layer like ``bench/latency.py`` does
(generated sentences, vectors from real MiniLM embeddings of 5,000 of them re-used with small
noise), then ``dakera-server serve`` is started three times on it:

* ``cold`` -- memories only, as after an import through the storage layer: no index snapshot
  and no derived row (entities, edges) for any memory. The entities are extracted by the
  start-up backfill after ready (``entity_backfill_s``, waited for); then ``kill -9``;
* ``after_kill9`` -- what a crash costs: no snapshot (they are written only at a clean
  shutdown), every memory with its row as stores leave it (entities, from the cold start's
  backfill, plus ``--edges`` edges per memory added through the engine), so every index is
  rebuilt from the store. Stopped with SIGTERM, which writes the snapshots;
* ``clean_restart`` -- the start after that clean shutdown.

For each start it prints the wall time from ``spawn`` to the first 200 of ``/health/ready`` and
the per-phase times of ``Engine.load`` from the server's ``start-up phases`` log line, then
``STARTUP_SUMMARY {json}``. 2 shared cores: compare numbers within one run.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import ROOT_KEY  # noqa: E402
from tests.processes import spawn_server  # noqa: E402

from bench.latency import (  # noqa: E402
    BACKFILL_DONE,
    BACKFILL_STARTED,
    BASE_EMBEDDED,
    prefill,
    wait_for_line,
)
from bench.textgen import memory_texts  # noqa: E402

AGENT = "big"
PHASES = re.compile(r"start-up phases: (.*?) \(total ([\d.]+) s\)")
PHASE = re.compile(r"([a-z_]+) ([\d.]+) s")
READY_TIMEOUT = 600.0


def start(
    data_dir: Path, log: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], float, str]:
    """Spawn ``dakera-server serve``; returns the process, seconds until it was ready, URL."""
    started = time.perf_counter()
    server = spawn_server(data_dir, log, ready_timeout=READY_TIMEOUT, **env)
    return server.process, time.perf_counter() - started, server.url


def phases(log: Path) -> dict[str, float]:
    """The ``start-up phases`` log line as {phase: seconds}, plus ``load_total``."""
    match = PHASES.search(log.read_text(errors="replace"))
    if match is None:
        return {}
    found = {name: float(value) for name, value in PHASE.findall(match.group(1))}
    found["load_total"] = float(match.group(2))
    return found


def add_derived_edges(data_dir: Path, per_memory: int) -> int:
    """Give every memory ``per_memory`` outgoing edges to random earlier ones, through the
    engine (``add_edges`` persists each memory's row), as stores would have; returns the count.

    The stores' own derivation (a vector search per memory) would take minutes at this size;
    what start-up pays for is the number of rows and edges, not how they were chosen.
    """
    from dakera_server.config import Settings
    from dakera_server.engine.core import Engine
    from dakera_server.engine.graph.model import SYSTEM, Edge

    # Exact search only: no HNSW build left running in this process during the measurements.
    settings = Settings(data_dir=data_dir, root_api_key=ROOT_KEY, exact_search_threshold=10**9)
    engine = Engine(settings)
    engine.load()
    agent = engine.memories.agent(SYSTEM, AGENT)
    assert agent is not None
    ids = [m.id for m in sorted(agent.memories.values(), key=lambda m: (m.created_at, m.id))]
    rng = random.Random(9)
    kinds = ("related_to", "shares_entity")
    for start in range(0, len(ids), 5000):
        edges = [
            Edge(ids[j], ids[rng.randrange(j)], kinds[k % 2], 0.9, 0, "Anna" if k % 2 else None)
            for j in range(max(1, start), min(len(ids), start + 5000))
            for k in range(per_memory)
        ]
        engine.graph.add_edges(AGENT, edges)
    graph = engine.graph.graph(AGENT)
    count = 0 if graph is None else len(graph.edges)
    engine.graph.close()
    engine.lifecycle.stop()
    engine.store.close()  # no Engine.close: that would write index snapshots
    return count


def run(name: str, data_dir: Path, work: Path, n: int, env: dict[str, str]) -> dict[str, Any]:
    """One start: ready time and phases; waits for a start-up entity backfill to end."""
    snapshots = len(list((data_dir / "snapshots").glob("*")))
    log = work / f"{name}.log"
    process, ready, _url = start(data_dir, log, env)
    row: dict[str, Any] = {
        "start": name,
        "n_memories": n,
        "snapshots_before": snapshots,
        "ready_s": round(ready, 2),
    }
    wait_for_line(log, PHASES, 60.0)  # logged just after ready
    row.update(phases(log))
    if BACKFILL_STARTED.search(log.read_text(errors="replace")):
        done = wait_for_line(log, BACKFILL_DONE, READY_TIMEOUT)
        row["entity_backfill_s"] = float(done.group(1)) if done else None
    row["_process"] = process
    return row


def measure(data_dir: Path, work: Path, n: int, env: dict[str, str], edges: int) -> list[Any]:
    """The three starts of the module docstring, in order, on one data dir."""
    cold = run("cold", data_dir, work, n, env)
    cold.pop("_process").send_signal(signal.SIGKILL)
    print(json.dumps(cold), flush=True)
    rows = [cold]
    # What the stores would have derived, then a crash: no snapshot (written only at a clean
    # shutdown), every memory with its row.
    rows_edges = add_derived_edges(data_dir, edges) if edges else 0
    shutil.rmtree(data_dir / "snapshots", ignore_errors=True)
    for name in ("after_kill9", "clean_restart"):
        row = run(name, data_dir, work, n, env)
        row["persisted_edges"] = rows_edges
        process = row.pop("_process")
        process.terminate()  # clean: writes the snapshots the next start restores
        process.wait(timeout=300)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--edges", type=int, default=5, help="derived edges per memory")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server")
    parser.add_argument("--keep", type=Path, default=None, help="work in this dir, keep it")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    from dakera_server.engine.text.providers import create_provider

    base = create_provider("builtin").embed(memory_texts(BASE_EMBEDDED, seed=5)).vectors
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        data_dir = work / "data"
        started = time.perf_counter()
        prefill(data_dir, AGENT, args.n, base)
        print(f"prefilled {args.n} memories in {time.perf_counter() - started:.1f} s", flush=True)
        rows = measure(data_dir, work, args.n, env, args.edges)
    print("STARTUP_SUMMARY " + json.dumps(rows))


if __name__ == "__main__":
    main()
