"""``kill -9`` in the middle of a backup, a restore and an import (engine/portability).

After each kill the server restarts on the same data directory: the data is intact, no partial
backup is listed, a cut-short restore changed nothing, and an import posted again resumes
after its last committed batch without duplicating a row.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest

from tests.conftest import ROOT_KEY
from tests.processes import ServerProcess, spawn_server

pytestmark = pytest.mark.slow
HEADERS = {"Authorization": f"Bearer {ROOT_KEY}"}
VECTORS = 30_000


def client(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=HEADERS, timeout=120)


def kill(server: ServerProcess) -> None:
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()


def fill_vectors(http: httpx.Client) -> None:
    assert http.post("/v1/namespaces", json={"name": "bulk", "dimension": 384}).is_success
    rng = np.random.default_rng(7)
    for start in range(0, VECTORS, 1000):
        batch = rng.standard_normal((1000, 384)).astype(np.float32)
        body = {
            "vectors": [
                {"id": f"v{start + i}", "values": row.tolist()} for i, row in enumerate(batch)
            ]
        }
        assert http.post("/v1/namespaces/bulk/vectors", json=body).is_success


def vector_count(http: httpx.Client) -> int:
    return int(http.get("/v1/namespaces/bulk").json()["vector_count"])


def test_kill_during_backup_and_during_restore(tmp_path: Path) -> None:
    data = tmp_path / "data"
    log = tmp_path / "server.log"
    server = spawn_server(data, log, RATE_LIMIT_RPS="0")
    with client(server) as http:
        fill_vectors(http)
    backups = data / "backups"

    def backup() -> None:
        try:
            with client(server) as http:
                http.post("/v1/admin/backups", json={"name": "doomed"})
        except httpx.TransportError:
            pass

    thread = threading.Thread(target=backup)
    thread.start()
    deadline = time.monotonic() + 60
    while not list(backups.glob("*.partial")) and time.monotonic() < deadline:
        time.sleep(0.002)
    assert list(backups.glob("*.partial")), "the backup never started writing"
    kill(server)
    thread.join()

    server = spawn_server(data, log, RATE_LIMIT_RPS="0")
    with client(server) as http:
        assert http.get("/v1/admin/backups").json()["backups"] == []
        assert not list(backups.glob("*.partial"))
        assert vector_count(http) == VECTORS
        good = http.post("/v1/admin/backups", json={"name": "good"}).json()
        blob = http.get(f"/v1/admin/backups/{good['backup_id']}/download").content
    server.stop()

    target_dir = tmp_path / "target"
    target = spawn_server(target_dir, log, RATE_LIMIT_RPS="0")
    with client(target) as http:
        mine = {"agent_id": "resident", "content": "the target's own memory"}
        assert http.post("/v1/memory/store", json=mine).is_success
        uploaded = http.post(
            "/v1/admin/backups/upload", content=blob, headers={"Content-Type": "application/gzip"}
        ).json()
        started = http.post(
            "/v1/admin/backups/restore",
            json={"backup_id": uploaded["backup_id"], "overwrite": True},
        ).json()
        path = f"/v1/admin/backups/restore/{started['restore_id']}"
        while http.get(path).json()["phase"] not in ("writing", "reloading", "done"):
            time.sleep(0.01)
        assert http.get(path).json()["phase"] == "writing", "the restore finished too fast to kill"
    kill(target)

    target = spawn_server(target_dir, log, RATE_LIMIT_RPS="0")
    try:
        with client(target) as http:
            recalled = http.post("/v1/memory/recall", json={"agent_id": "resident", "query": "own"})
            assert [m["memory"]["content"] for m in recalled.json()["memories"]] == [
                "the target's own memory"
            ]
            assert http.get("/v1/namespaces/bulk").status_code == 404
            again = http.post(
                "/v1/admin/backups/restore",
                json={"backup_id": uploaded["backup_id"], "overwrite": True},
            ).json()
            status = again
            while status.get("status") == "running":
                time.sleep(0.05)
                answer = http.get(f"/v1/admin/backups/restore/{again['restore_id']}")
                assert answer.status_code == 200, answer.text
                status = answer.json()
            assert status["status"] == "completed", status
            assert vector_count(http) == VECTORS
    finally:
        target.stop()


def test_kill_during_import_then_the_same_file_resumes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    log = tmp_path / "server.log"
    rows = b"\n".join(orjson.dumps({"content": f"resumable row {i}"}) for i in range(3000))
    server = spawn_server(data, log, RATE_LIMIT_RPS="0")
    with client(server) as http:
        job = http.post(
            "/v1/import", params={"agent_id": "bulk"}, files={"file": ("r.jsonl", rows)}
        )
        job_id = job.json()["job_id"]
        while http.get(f"/v1/import/{job_id}/status").json()["processed"] < 300:
            time.sleep(0.01)
    kill(server)
    server = spawn_server(data, log, RATE_LIMIT_RPS="0")
    try:
        with client(server) as http:
            interrupted = http.get(f"/v1/import/{job_id}/status").json()
            assert 0 < interrupted["processed"] < 3000 and interrupted["status"] == "failed"
            assert "post the same file again" in interrupted["errors"][-1]
            resumed = http.post(
                "/v1/import", params={"agent_id": "bulk"}, files={"file": ("r.jsonl", rows)}
            ).json()
            assert resumed["job_id"] == job_id and resumed["resumed_from"] > 0
            while (status := http.get(f"/v1/import/{job_id}/status").json())["status"] == "running":
                time.sleep(0.2)
            assert status["status"] == "done", status
            exported = http.get("/v1/export", params={"agent_id": "bulk"}).content.splitlines()
            contents = sorted(orjson.loads(line)["content"] for line in exported)
            assert contents == sorted(f"resumable row {i}" for i in range(3000))
    finally:
        server.stop()
