"""Two nodes on one PostgreSQL through failures: a node killed with ``kill -9`` loses nothing
it acknowledged, and PostgreSQL stopped and started under writers over both nodes gives only
200 or 503 answers, cached reads and a degraded ``/health`` meanwhile, and recovery without a
restart."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT_KEY
from tests.pgcluster import PostgresCluster
from tests.processes import ServerProcess, spawn_server

HEADERS = {"Authorization": f"Bearer {ROOT_KEY}"}


class Writers:
    """Four writers, each sending its stores to both nodes in turn, recording every answer."""

    def __init__(self, urls: Callable[[], list[str]]) -> None:
        self.urls = urls
        self.acknowledged: list[tuple[str, str]] = []
        self.statuses: list[int] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(4)]

    def _run(self, index: int) -> None:
        clients: dict[str, httpx.Client] = {}
        try:
            for i in range(100_000):
                if self.stop.is_set():
                    return
                live = self.urls()
                url = live[(index + i) % len(live)]
                http = clients.setdefault(
                    url, httpx.Client(base_url=url, headers=HEADERS, timeout=60)
                )
                try:
                    answer = http.post(
                        "/v1/memory/store",
                        json={"agent_id": f"w{index}", "content": f"note {index} {i}"},
                    )
                except httpx.TransportError:  # the node was killed under this request
                    time.sleep(0.05)
                    continue
                self.statuses.append(answer.status_code)
                if answer.status_code == 200:
                    self.acknowledged.append((f"w{index}", answer.json()["memory"]["id"]))
                else:
                    assert answer.status_code == 503, answer.text
                    time.sleep(0.1)
        finally:
            for client in clients.values():
                client.close()

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def wait_for(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) < count and time.monotonic() < deadline:
            time.sleep(0.05)


def _stored(node: ServerProcess, agents: set[str]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    with httpx.Client(base_url=node.url, headers=HEADERS, timeout=60) as http:
        for agent in agents:
            listed = http.post(
                "/v1/memories/recall/batch", json={"agent_id": agent, "filter": {}, "limit": 5000}
            )
            assert listed.status_code == 200, listed.text
            found |= {(agent, memory["id"]) for memory in listed.json()["memories"]}
    return found


@pytest.mark.slow
def test_every_write_acknowledged_by_a_killed_node_is_served_by_the_other(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    url = postgres.url(postgres.create_database("kill9"))
    a = spawn_server(tmp_path / "a", tmp_path / "a.log", DAKERA_STORAGE_URL=url)
    b = spawn_server(tmp_path / "b", tmp_path / "b.log", DAKERA_STORAGE_URL=url)
    live = [a.url, b.url]
    try:
        with Writers(lambda: list(live)) as writers:
            writers.wait_for(40)
            os.kill(a.process.pid, signal.SIGKILL)
            a.process.wait()
            live.remove(a.url)
            before = len(writers.acknowledged)
            writers.wait_for(before + 20)
        assert set(writers.statuses) <= {200, 503}
        agents = {agent for agent, _ in writers.acknowledged}
        missing = set(writers.acknowledged) - _stored(b, agents)
        assert not missing, f"{len(missing)} acknowledged writes missing on the surviving node"
        # The killed node stops heartbeating: B's cluster view reports it silent, degraded.
        with httpx.Client(base_url=b.url, headers=HEADERS, timeout=30) as http:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                status = http.get("/v1/admin/cluster/status").json()
                if status["silent_nodes"]:
                    break
                time.sleep(1)
            assert status["status"] == "degraded" and len(status["silent_nodes"]) == 1, status
            assert status["node_count"] == 1 and "silent" in status["reasons"][0]
            listed = {n["node_id"]: n["status"] for n in http.get("/v1/admin/cluster/nodes").json()}
            assert sorted(listed.values()) == ["healthy", "silent"], listed
    finally:
        b.stop()
        a.stop()


@pytest.mark.slow
def test_postgres_outage_under_two_nodes(own_cluster: PostgresCluster, tmp_path: Path) -> None:
    url = own_cluster.url(own_cluster.create_database("outage2"))
    nodes = [
        spawn_server(tmp_path / name, tmp_path / f"{name}.log", DAKERA_STORAGE_URL=url)
        for name in ("a", "b")
    ]
    try:
        with Writers(lambda: [n.url for n in nodes]) as writers:
            writers.wait_for(20)
            own_cluster.stop_immediately()
            time.sleep(3)
            for node in nodes:
                with httpx.Client(base_url=node.url, headers=HEADERS, timeout=30) as http:
                    health = http.get("/health").json()
                    assert health["status"] == "degraded", health
                    assert "serving cached reads" in health["details"]["storage"]
                    ready = http.get("/health/ready").json()
                    assert ready["checks"]["storage"]["status"] == "degraded"
                    recalled = http.post(
                        "/v1/memory/recall", json={"agent_id": "w0", "query": "note"}
                    )
                    assert recalled.status_code == 200, recalled.text  # cached reads
                    assert recalled.json()["memories"]
            own_cluster.start()
            back = len(writers.acknowledged)
            writers.wait_for(back + 20)
            assert len(writers.acknowledged) >= back + 20, "writes must resume without a restart"
        assert set(writers.statuses) <= {200, 503} and 503 in writers.statuses
        deadline = time.monotonic() + 15
        for node in nodes:
            while time.monotonic() < deadline:
                if httpx.get(f"{node.url}/health").json()["status"] == "healthy":
                    break
                time.sleep(0.2)
            assert httpx.get(f"{node.url}/health").json()["status"] == "healthy"
        agents = {agent for agent, _ in writers.acknowledged}
        for node in nodes:
            missing = set(writers.acknowledged) - _stored(node, agents)
            assert not missing, f"{len(missing)} acknowledged writes missing on {node.url}"
    finally:
        for node in nodes:
            node.stop()
