"""Many clients at once (issue 21): right answers, right vectors, nothing acknowledged lost.

Concurrent stores and recalls go through the micro-batcher (their texts share forward passes);
what each request stored must be the vector of its own text, exactly as if it had been alone,
and every store answered 2xx must survive a SIGKILL of the server in the middle of the load.
Throughput and latency are measured in ``bench/load.py``, not here.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from dakera_server.engine.memory.models import Memory
from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import ROOT_KEY, start_server
from tests.processes import spawn_server

HEADERS = {"Authorization": f"Bearer {ROOT_KEY}"}
CLIENTS = 16
PEOPLE = (
    "Anna Ben Carla Dmitri Elena Farid Grace Hiro Ines Jonas Kira Luca Maya Nora Omar Pia".split()
)
THINGS = ["sourdough baking", "a chess tournament", "marathon training", "the pottery class"]
PLACES = "Lisbon Oslo Kyoto Denver Lagos Quito Tallinn Perth".split()


def run_clients(count: int, work: Callable[[int, httpx.Client], None], url: str) -> None:
    """``work(i, client)`` on ``count`` threads released together; re-raises the first error."""
    gate = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        with httpx.Client(base_url=url, headers=HEADERS, timeout=60) as http:
            gate.wait()
            try:
                work(i, http)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def test_concurrent_stores_keep_their_own_vectors(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    server = start_server(tmp_path / "data", embedder)
    stored: dict[str, str] = {}
    recalled: list[tuple[str, list[str]]] = []

    def work(i: int, http: httpx.Client) -> None:
        for j in range(4):
            content = f"{PEOPLE[i]} told me about {THINGS[j]} in {PLACES[(i + j) % len(PLACES)]}"
            answer = http.post("/v1/memory/store", json={"agent_id": "load", "content": content})
            assert answer.status_code == 200, answer.text
            stored[answer.json()["memory"]["id"]] = content
            found = http.post(
                "/v1/memory/recall", json={"agent_id": "load", "query": content, "top_k": 3}
            )
            assert found.status_code == 200, found.text
            recalled.append((content, [m["memory"]["content"] for m in found.json()["memories"]]))

    try:
        run_clients(CLIENTS, work, server.url)
        batcher = server.engine.embedder
        vectors = {}
        for row in server.engine.store.iter_rows("memories"):
            memory = Memory.from_payload(row.payload)
            assert row.vector is not None
            vectors[memory.id] = np.frombuffer(row.vector, dtype=np.float32)
    finally:
        server.stop()
    assert len(stored) == CLIENTS * 4 and set(vectors) == set(stored)
    for memory_id, content in stored.items():
        alone = embedder.embed_one(content).astype(np.float64)
        got = vectors[memory_id].astype(np.float64)
        assert got @ alone / (np.linalg.norm(got) * np.linalg.norm(alone)) >= 1 - 1e-6
    # A recall for a text just stored by the same client finds it (its own vector was indexed).
    assert all(content in hits for content, hits in recalled), recalled
    # Some passes really served several requests' texts at once.
    assert batcher.texts_batched > batcher.passes_run  # type: ignore[attr-defined]


@pytest.mark.slow
def test_no_acknowledged_store_is_lost_when_killed_under_load(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = spawn_server(data_dir, tmp_path / "server.log")
    acknowledged: list[str] = []
    stop = threading.Event()

    def work(i: int, http: httpx.Client) -> None:
        for j in range(10_000):
            if stop.is_set():
                return
            try:
                answer = http.post(
                    "/v1/memory/store",
                    json={"agent_id": f"crash-{i % 4}", "content": f"client {i} memory {j}"},
                )
            except httpx.TransportError:
                return
            if answer.status_code == 200:
                acknowledged.append(answer.json()["memory"]["id"])
            else:  # only a deliberate refusal is allowed under load
                assert answer.status_code == 503, answer.text

    load = threading.Thread(target=run_clients, args=(CLIENTS, work, first.url))
    load.start()
    while len(acknowledged) < 120 and load.is_alive():
        stop.wait(0.05)
    os.kill(first.process.pid, signal.SIGKILL)  # mid-load: passes and commits in flight
    first.process.wait()
    stop.set()
    load.join()
    assert len(acknowledged) >= 120, first.output()

    second = spawn_server(data_dir, tmp_path / "server.log")
    try:
        with httpx.Client(base_url=second.url, headers=HEADERS, timeout=10) as http:
            missing = [
                memory_id
                for memory_id in acknowledged
                if http.get(f"/v1/memory/get/{memory_id}").status_code != 200
            ]
        assert missing == [], f"{len(missing)} of {len(acknowledged)} acknowledged stores lost"
    finally:
        second.stop()
