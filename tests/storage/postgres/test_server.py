"""``dakera-server serve`` on PostgreSQL, across process boundaries: a 2xx is in PostgreSQL
even after ``kill -9``, PostgreSQL going away and coming back under load, the URL's password
kept out of every output, and the ``keys`` command on the same database."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from dakera_server.config import Settings
from tests.conftest import ROOT_KEY
from tests.pgcluster import PostgresCluster
from tests.processes import BIN, free_port, spawn_server

HEADERS = {"Authorization": f"Bearer {ROOT_KEY}"}
PASSWORD = "pg-S3cret-9f2k"


@pytest.mark.slow
def test_a_2xx_is_in_postgres_after_kill_9(postgres: PostgresCluster, tmp_path: Path) -> None:
    database = postgres.create_database("kill")
    url = postgres.url(database)
    server = spawn_server(tmp_path / "a", tmp_path / "a.log", DAKERA_STORAGE_URL=url)
    acknowledged: list[str] = []
    with httpx.Client(base_url=server.url, headers=HEADERS, timeout=30) as http:
        for i in range(25):
            answer = http.post(
                "/v1/memory/store", json={"agent_id": "crash", "content": f"durable fact {i}"}
            )
            assert answer.status_code == 200, answer.text
            acknowledged.append(answer.json()["memory"]["id"])
        upsert = http.post(
            "/v1/namespaces/crashns/vectors",
            json={"vectors": [{"id": f"v{i}", "values": [1.0, float(i)]} for i in range(50)]},
        )
        assert upsert.status_code == 200, upsert.text
    os.kill(server.process.pid, signal.SIGKILL)  # right after the last 2xx
    server.process.wait()
    keys = {
        key
        for (key,) in postgres.query(
            database, "SELECT key FROM dakera.memories WHERE grp = 'crash'"
        )
    }
    assert keys == set(acknowledged)
    assert postgres.query(database, "SELECT count(*) FROM dakera.vectors") == [(50,)]
    # A node with an empty data directory serves it all: PostgreSQL is the truth.
    other = spawn_server(tmp_path / "b", tmp_path / "b.log", DAKERA_STORAGE_URL=url)
    try:
        with httpx.Client(base_url=other.url, headers=HEADERS, timeout=30) as http:
            for memory_id in acknowledged:
                found = http.get(f"/v1/memory/get/{memory_id}?agent_id=crash")
                assert found.status_code == 200, memory_id
            recalled = http.post(
                "/v1/memory/recall", json={"agent_id": "crash", "query": "durable fact"}
            )
            assert recalled.json()["memories"]
            assert http.get("/v1/namespaces/crashns").json()["vector_count"] == 50
    finally:
        other.stop()


@pytest.mark.slow
def test_postgres_down_means_503_and_it_recovers_without_a_restart(
    own_cluster: PostgresCluster, tmp_path: Path
) -> None:
    """Writers over HTTP while PostgreSQL is killed and restarted: only 200 or 503 answers,
    503s while it is down, 200s again afterwards from the same server process, and every 200
    readable at the end."""
    url = own_cluster.url(own_cluster.create_database("outage"))
    server = spawn_server(tmp_path / "d", tmp_path / "d.log", DAKERA_STORAGE_URL=url)
    acknowledged: list[tuple[str, str]] = []
    statuses: list[int] = []
    stop = threading.Event()
    back: list[float] = []
    after_back: list[str] = []

    def writer(index: int) -> None:
        with httpx.Client(base_url=server.url, headers=HEADERS, timeout=60) as http:
            for i in range(100_000):
                if stop.is_set():
                    return
                answer = http.post(
                    "/v1/memory/store",
                    json={"agent_id": f"out{index}", "content": f"note {index} {i}"},
                )
                statuses.append(answer.status_code)
                if answer.status_code == 200:
                    acknowledged.append((f"out{index}", answer.json()["memory"]["id"]))
                    if back:
                        after_back.append(answer.json()["memory"]["id"])
                else:
                    assert answer.status_code == 503, answer.text
                    assert answer.json()["code"] == "SERVICE_UNAVAILABLE"
                    time.sleep(0.1)

    writers = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    try:
        for thread in writers:
            thread.start()
        while len(acknowledged) < 10:
            time.sleep(0.05)
        own_cluster.stop_immediately()
        time.sleep(4)
        own_cluster.start()
        back.append(time.monotonic())
        deadline = time.monotonic() + 60
        while len(after_back) < 10 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in writers:
            thread.join()
    try:
        assert set(statuses) <= {200, 503} and 503 in statuses, server.output()
        assert len(after_back) >= 10, "the server must write again without a restart"
        with httpx.Client(base_url=server.url, headers=HEADERS, timeout=30) as http:
            stored: set[tuple[str, str]] = set()
            for agent in {agent for agent, _ in acknowledged}:
                listed = http.post(
                    "/v1/memories/recall/batch",
                    json={"agent_id": agent, "filter": {}, "limit": 5000},
                ).json()
                stored |= {(agent, memory["id"]) for memory in listed["memories"]}
            missing = set(acknowledged) - stored
            assert not missing, f"{len(missing)} acknowledged writes missing"
    finally:
        server.stop()


@pytest.mark.slow
def test_the_storage_password_appears_nowhere(postgres: PostgresCluster, tmp_path: Path) -> None:
    url = postgres.url(postgres.create_database("pw"), password=PASSWORD)
    assert PASSWORD not in repr(Settings(storage_url=url))
    server = spawn_server(
        tmp_path / "p", tmp_path / "p.log", DAKERA_STORAGE_URL=url, DAKERA_LOG_LEVEL="debug"
    )
    try:
        with httpx.Client(base_url=server.url, headers=HEADERS, timeout=30) as http:
            answers = [
                http.get(path).text
                for path in (
                    "/health",
                    "/health/ready",
                    "/health/live",
                    "/metrics",
                    "/openapi.json",
                )
            ]
            http.post("/v1/memory/store", json={"agent_id": "pw", "content": "hello"})
    finally:
        server.stop()
    output = server.output()
    assert f"store: postgresql postgres@127.0.0.1:{postgres.port}/" in output
    assert PASSWORD not in output
    assert all(PASSWORD not in text for text in answers)


def test_an_unreachable_database_stops_start_up_with_a_clear_message(tmp_path: Path) -> None:
    port = free_port()
    url = f"postgresql://dakera:{PASSWORD}@127.0.0.1:{port}/dakera?connect_timeout=2"
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin"),
        "DAKERA_DATA_DIR": str(tmp_path / "data"),
        "DAKERA_PORT": str(free_port()),
        "DAKERA_ROOT_API_KEY": ROOT_KEY,
        "DAKERA_STORAGE_URL": url,
    }
    started = subprocess.run(
        [str(BIN), "serve"], env=environ, capture_output=True, text=True, timeout=120
    )
    assert started.returncode == 3, started.stderr
    assert f"cannot reach postgresql dakera@127.0.0.1:{port}/dakera" in started.stderr
    assert PASSWORD not in started.stderr + started.stdout
    bad = subprocess.run(
        [str(BIN), "serve"],
        env={**environ, "DAKERA_STORAGE_URL": f"mysql://root:{PASSWORD}@db/x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "DAKERA_STORAGE_URL" in bad.stderr
    assert PASSWORD not in bad.stderr


def test_the_keys_command_works_on_the_shared_database(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin"),
        "DAKERA_DATA_DIR": str(tmp_path / "cli"),
        "DAKERA_STORAGE_URL": postgres.url(postgres.create_database("cli")),
    }

    def keys(*args: str) -> str:
        done = subprocess.run(
            [str(BIN), "keys", *args], env=environ, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    created = keys("create", "--name", "ops", "--scope", "read", "--json")
    assert '"key": "dk_' in created
    assert " ops" in keys("list")
    assert not (tmp_path / "cli" / "dakera.db").exists()  # nothing went to SQLite
