"""A write answered 2xx survives kill -9 of the server, and restarts keep everything."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT_KEY
from tests.processes import spawn_server

HEADERS = {"Authorization": f"Bearer {ROOT_KEY}"}


@pytest.mark.slow
def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = spawn_server(data_dir, tmp_path / "server.log")
    acknowledged: list[str] = []
    stop = threading.Event()

    def write_loop() -> None:
        with httpx.Client(base_url=first.url, headers=HEADERS, timeout=10) as http:
            for i in range(10_000):
                if stop.is_set():
                    return
                try:
                    answer = http.post(
                        "/v1/memory/store",
                        json={"agent_id": "crash", "content": f"durable memory {i}"},
                    )
                except httpx.TransportError:
                    return
                if answer.status_code == 200:
                    acknowledged.append(answer.json()["memory"]["id"])

    writer = threading.Thread(target=write_loop)
    writer.start()
    while len(acknowledged) < 40 and writer.is_alive():
        stop.wait(0.05)
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait()
    stop.set()
    writer.join()
    assert len(acknowledged) >= 40, first.output()

    second = spawn_server(data_dir, tmp_path / "server.log")
    try:
        with httpx.Client(base_url=second.url, headers=HEADERS, timeout=10) as http:
            for memory_id in acknowledged:
                answer = http.get(f"/v1/memory/get/{memory_id}?agent_id=crash")
                assert answer.status_code == 200, memory_id
            recalled = http.post(
                "/v1/memory/recall", json={"agent_id": "crash", "query": "durable memory"}
            )
            assert recalled.json()["memories"]
    finally:
        second.stop()


@pytest.mark.slow
def test_restart_keeps_memories_sessions_and_access_counts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = spawn_server(data_dir, tmp_path / "server.log")
    with httpx.Client(base_url=first.url, headers=HEADERS, timeout=10) as http:
        sid = http.post("/v1/sessions/start", json={"agent_id": "keep"}).json()["session"]["id"]
        stored = http.post(
            "/v1/memory/store",
            json={"agent_id": "keep", "content": "kept across restarts", "session_id": sid},
        ).json()["memory"]
        http.post("/v1/memory/recall", json={"agent_id": "keep", "query": "kept"})
    first.stop()
    second = spawn_server(data_dir, tmp_path / "server.log")
    try:
        with httpx.Client(base_url=second.url, headers=HEADERS, timeout=10) as http:
            memory = http.get(f"/v1/memory/get/{stored['id']}?agent_id=keep").json()
            assert memory["content"] == "kept across restarts"
            assert memory["access_count"] == 1
            assert http.get(f"/v1/sessions/{sid}").json()["memory_count"] == 1
    finally:
        second.stop()
