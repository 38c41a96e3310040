"""Background work once per cluster: ``PostgresStore.exclusive`` (a session advisory lock that
dies with its connection) and the AutoPilot scheduler built on it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from dakera_server.engine.lifecycle.autopilot import AutoPilot
from dakera_server.engine.lifecycle.jobs import Job, JobRegistry
from dakera_server.engine.lifecycle.state import StateStore
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.storage.postgres import PostgresStore
from tests.conftest import start_server
from tests.pgcluster import PostgresCluster


def test_one_holder_at_a_time_and_a_dead_holder_frees_the_work(
    postgres: PostgresCluster,
) -> None:
    database = postgres.create_database("excl")
    a, b = PostgresStore(postgres.url(database)), PostgresStore(postgres.url(database))
    try:
        with a.exclusive("decay") as mine:
            assert mine
            with b.exclusive("decay") as theirs:
                assert not theirs
            with b.exclusive("ttl_sweep") as other_work:
                assert other_work  # another kind of work is not blocked
        with b.exclusive("decay") as now_theirs:
            assert now_theirs
        with a.exclusive("dedup") as held:
            assert held
            # The holder dies (its connection ends, as with kill -9 of its node).
            postgres.query(
                database,
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND objid = 18",
            )
            # pg_terminate_backend only signals: the lock goes when the backend has exited.
            deadline = time.monotonic() + 10
            held_by_dead = "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 18"
            while postgres.query(database, held_by_dead) and time.monotonic() < deadline:
                time.sleep(0.05)
            with b.exclusive("dedup") as taken_over:
                assert taken_over
    finally:
        a.close()
        b.close()


def _autopilot(store: PostgresStore, clock: list[float]) -> AutoPilot:
    state = StateStore(store)
    pilot = AutoPilot(
        state,
        JobRegistry(state, lambda: clock[0], cpu_share=1.0),
        enabled_default=False,
        decay_interval_secs=0,
        ttl_interval_secs=60,
        last_decay_at=lambda: None,
    )
    pilot.exclusive = store.exclusive
    pilot.shared = True
    return pilot


def test_a_scheduled_pass_runs_once_per_interval_across_nodes(postgres: PostgresCluster) -> None:
    url = postgres.url(postgres.create_database("sched"))
    stores = [PostgresStore(url), PostgresStore(url)]
    clock = [1000.0]
    ran: list[int] = []
    try:
        pilots = [_autopilot(store, clock) for store in stores]

        def runner(node: int) -> Any:
            def run(kind: str, params: dict[str, Any], resumed_from: str | None) -> Job:
                ran.append(node)
                return Job(id="j", kind=kind, params=params, created_at=int(clock[0]))

            return run

        for pilot in pilots:
            pilot._started_at = clock[0]
        clock[0] += 61  # the TTL sweep is due on both nodes
        for node, pilot in enumerate(pilots):
            assert pilot.due() == ["ttl_sweep"]
            pilot._run_once(runner(node), "ttl_sweep")
        assert ran == [0]  # the second node saw it done within the interval
        assert pilots[1].due() == []
        clock[0] += 61
        pilots[1]._run_once(runner(1), "ttl_sweep")
        assert ran == [0, 1]
    finally:
        for store in stores:
            store.close()


def test_a_client_pass_waits_for_no_pass_running_on_another_node(
    postgres: PostgresCluster, tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    url = postgres.url(postgres.create_database("clientpass"))
    other_node = PostgresStore(url)
    server = start_server(tmp_path, embedder, storage_url=url, grpc_enabled=False)
    try:
        with server.http() as http:
            http.post("/v1/memory/store", json={"agent_id": "dup", "content": "x"})
            body = {"agent_id": "dup", "dry_run": True}
            with other_node.exclusive("dedup") as mine:
                assert mine
                busy = http.post("/v1/knowledge/deduplicate", json=body)
                assert busy.status_code == 503 and busy.headers["Retry-After"] == "5", busy.text
            assert http.post("/v1/knowledge/deduplicate", json=body).status_code == 200
    finally:
        server.stop()
        other_node.close()
