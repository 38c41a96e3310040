"""Writers of several nodes on one PostgreSQL database do not undo each other: singletons are
created once (insert-if-absent) and access statistics never bring back a forgotten memory."""

from __future__ import annotations

import threading

from dakera_server.engine.events.audit import AuditLog
from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.keys.store import KeyStore
from dakera_server.engine.keys.usage import UsageBook
from dakera_server.engine.ops.history import MetricsHistory
from dakera_server.engine.ops.metrics import MetricsRegistry
from dakera_server.security.keys import ROOT_CALLER, KeyRing
from dakera_server.storage.base import Op
from dakera_server.storage.postgres import PostgresStore
from dakera_server.storage.postgres.eventlog import PostgresEventLog
from tests.pgcluster import PostgresCluster


def test_nodes_starting_together_share_one_pepper_and_one_root_key(
    postgres: PostgresCluster,
) -> None:
    url = postgres.url(postgres.create_database("singletons"))
    stores = [PostgresStore(url) for _ in range(4)]
    try:
        rings: list[KeyRing] = [None] * 4  # type: ignore[list-item]
        secrets: list[str | None] = [None] * 4
        barrier = threading.Barrier(4)

        def start(i: int) -> None:
            barrier.wait()
            rings[i] = KeyRing(KeyStore(stores[i]), None)
            secrets[i] = rings[i].bootstrap()

        threads = [threading.Thread(target=start, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        peppers = {ring.keys.lookup_handle("same secret") for ring in rings}
        assert len(peppers) == 1
        shown = [s for s in secrets if s is not None]
        assert len(shown) == 1, "exactly one node generates (and shows) the root key"
        for ring in rings:  # every node accepts the secret that node showed
            assert ring.authenticate(shown[0]) is ROOT_CALLER
    finally:
        for store in stores:
            store.close()


def test_an_update_never_brings_back_a_row_deleted_elsewhere(postgres: PostgresCluster) -> None:
    url = postgres.url(postgres.create_database("stats"))
    a, b = PostgresStore(url), PostgresStore(url)
    try:
        a.write([Op.put("memories", "m1", b"v1", group="agent")])
        b.write([Op.delete("memories", "m1", group="agent")])
        a.write([Op.update("memories", "m1", b"v1 with stats", group="agent")])
        assert b.get_row("memories", "m1", "agent") is None
    finally:
        a.close()
        b.close()


def test_two_nodes_never_number_two_events_alike(postgres: PostgresCluster) -> None:
    url = postgres.url(postgres.create_database("events"))
    stores = [PostgresStore(url), PostgresStore(url)]
    buses = [EventBus(), EventBus()]
    audits = [AuditLog(PostgresEventLog(s), b) for s, b in zip(stores, buses, strict=True)]
    try:
        emitted = [
            buses[i % 2].emit("stored", agent_id=f"agent-{i % 2}", memory_id=f"m{i}").id
            for i in range(2500)  # past the first block of each node
        ]
        assert len(set(emitted)) == len(emitted)
        for audit in audits:
            audit.flush()
        count = postgres.query(url.rsplit("/", 1)[1], "SELECT count(*) FROM dakera.audit_events")
        assert count == [(2500,)]
    finally:
        for audit in audits:
            audit.close()
        for store in stores:
            store.close()


def test_key_usage_of_two_nodes_adds_up_instead_of_overwriting(postgres: PostgresCluster) -> None:
    url = postgres.url(postgres.create_database("usage"))
    a, b = PostgresStore(url), PostgresStore(url)
    try:
        books = [UsageBook(a, "node-a"), UsageBook(b, "node-b")]
        for i in range(30):
            books[i % 2].record("dk_k1", 200, 10, 1.0, "recall", "ns", 1000 + i)
        books[1].record("dk_k1", 429, 0, 0.5, "store", "ns", 2000)
        for book in books:
            book.flush()
        for book in books:
            usage = book.get("dk_k1")
            assert (usage.total, usage.successful, usage.rate_limited) == (31, 30, 1)
            assert usage.last_used_at == 2000
            assert usage.by_endpoint == {"recall": 30, "store": 1}
        again = UsageBook(a, "node-a")  # a restarted node resumes its own row
        assert again.get("dk_k1").total == 31
        a.write(again.forget_ops(["dk_k1"]))
        assert UsageBook(b, "node-b").get("dk_k1").total == 0
    finally:
        a.close()
        b.close()


def test_each_node_keeps_its_own_metrics_history(postgres: PostgresCluster) -> None:
    url = postgres.url(postgres.create_database("metrics"))
    store = PostgresStore(url)
    try:
        histories = []
        for node, records in (("node-a", 5), ("node-b", 9)):
            registry = MetricsRegistry()
            registry.records_total = records
            history = MetricsHistory(store, registry, interval=60)
            history.prefix = f"ops.metrics.{node}."
            history.load()
            history.snapshot()
            histories.append(history)
        for node, records in (("node-a", 5), ("node-b", 9)):
            restarted = MetricsHistory(store, MetricsRegistry(), interval=60)
            restarted.prefix = f"ops.metrics.{node}."
            assert restarted.load() == 1
            assert restarted.registry.records_total == records  # its own, not the other's
    finally:
        store.close()
