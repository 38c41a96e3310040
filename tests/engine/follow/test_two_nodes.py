"""Two ``dakera-server serve`` processes on one PostgreSQL database: a write acknowledged by
one node is seen by the very next request on the other (engine/follow)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ROOT_KEY
from tests.pgcluster import PostgresCluster
from tests.processes import ServerProcess, spawn_server

HEADERS = {"Authorization": f"Bearer {ROOT_KEY}"}


@pytest.fixture(scope="module")
def nodes(
    postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    url = postgres.url(postgres.create_database("two"))
    base = tmp_path_factory.mktemp("two-nodes")
    started: list[ServerProcess] = []
    try:
        for name in ("a", "b"):
            started.append(spawn_server(base / name, base / f"{name}.log", DAKERA_STORAGE_URL=url))
        a, b = (httpx.Client(base_url=s.url, headers=HEADERS, timeout=30) for s in started)
        with a, b:
            yield a, b
    finally:
        for server in started:
            server.stop()


def _recall(node: httpx.Client, agent: str, query: str) -> list[str]:
    answer = node.post("/v1/memory/recall", json={"agent_id": agent, "query": query, "top_k": 10})
    assert answer.status_code == 200, answer.text
    return [m["memory"]["id"] for m in answer.json()["memories"]]


def test_store_on_a_is_recalled_on_b_and_forget_on_b_is_gone_on_a(
    nodes: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = nodes
    assert _recall(a, "shared", "anything at all") == []  # A holds the agent (empty) first
    for i in range(20):
        stored = a.post(
            "/v1/memory/store", json={"agent_id": "shared", "content": f"The heron {i} fishes"}
        )
        assert stored.status_code == 200, stored.text
        memory_id = stored.json()["memory"]["id"]
        assert memory_id in _recall(b, "shared", f"heron {i} fishing")  # the very next request
    forgot = b.post("/v1/memory/forget", json={"agent_id": "shared", "memory_ids": [memory_id]})
    assert forgot.status_code == 200, forgot.text
    assert memory_id not in _recall(a, "shared", "heron 19 fishing")
    assert a.get(f"/v1/memory/get/{memory_id}?agent_id=shared").status_code == 404
    updated = a.post(
        "/v1/memory/store",
        json={"agent_id": "other-agent", "content": "Only node A was asked to store this"},
    )
    assert updated.status_code == 200
    listed = b.get("/v1/agents")
    assert listed.status_code == 200
    assert "other-agent" in listed.text


def test_namespace_vectors_written_on_one_node_are_queried_on_the_other(
    nodes: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = nodes
    for i in range(5):
        upsert = a.post(
            "/v1/namespaces/shared-ns/vectors",
            json={"vectors": [{"id": f"v{i}", "values": [1.0, float(i), 0.5]}]},
        )
        assert upsert.status_code == 200, upsert.text
        assert b.get("/v1/namespaces/shared-ns").json()["vector_count"] == i + 1
    deleted = b.delete("/v1/namespaces/shared-ns")
    assert deleted.status_code in (200, 204), deleted.text
    assert a.get("/v1/namespaces/shared-ns").status_code == 404


def test_a_namespace_written_then_deleted_at_once_on_one_node_is_deleted(
    nodes: tuple[httpx.Client, httpx.Client],
) -> None:
    """The notice of a node's own write used to race the write's cursor update: the
    follower then reloaded the namespace and swapped out the object the next request was
    deleting, which answered 404 for a namespace that existed (about one CI run in two)."""
    a, _ = nodes
    for i in range(40):
        name = f"own-write-{i}"
        upsert = a.post(
            f"/v1/namespaces/{name}/vectors",
            json={"vectors": [{"id": "v", "values": [1.0, 0.5]}]},
        )
        assert upsert.status_code == 200, upsert.text
        deleted = a.delete(f"/v1/namespaces/{name}")
        assert deleted.status_code == 200, (i, deleted.text)
        assert deleted.json()["vectors_deleted"] == 1


def test_a_key_made_on_a_works_on_b_and_revoked_on_a_is_refused_on_b(
    nodes: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = nodes
    made = a.post("/admin/keys", json={"name": "roaming", "scope": "read"})
    assert made.status_code == 201, made.text
    secret, key_id = made.json()["key"], made.json()["key_id"]
    as_key = {"Authorization": f"Bearer {secret}"}
    assert b.get("/v1/agents", headers=as_key).status_code == 200
    revoked = a.post(f"/admin/keys/{key_id}/deactivate")
    assert revoked.status_code == 200, revoked.text
    assert b.get("/v1/agents", headers=as_key).status_code == 401  # the very next request


def test_sessions_graph_edges_and_policies_cross_nodes(
    nodes: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = nodes
    started = a.post("/v1/sessions/start", json={"agent_id": "sess-agent"})
    assert started.status_code in (200, 201), started.text
    sid = started.json()["session"]["id"]
    assert b.get(f"/v1/sessions/{sid}").status_code == 200
    assert sid in b.get("/v1/sessions", params={"agent_id": "sess-agent"}).text
    ended = b.post(f"/v1/sessions/{sid}/end", json={})
    assert ended.status_code == 200, ended.text
    got = a.get(f"/v1/sessions/{sid}").json()
    assert got.get("session", got)["active"] is False, got

    first, second = (
        a.post("/v1/memory/store", json={"agent_id": "kg", "content": text}).json()["memory"]["id"]
        for text in ("Booked flights to Lisbon", "The dentist moved to Thursday")
    )
    linked = a.post(
        f"/v1/memories/{first}/links",
        json={"target_id": second, "agent_id": "kg", "label": "same week"},
    )
    assert linked.status_code in (200, 201), linked.text
    export = b.get("/v1/agents/kg/graph/export").json()
    assert any(
        {first, second} <= set(e.values()) and "linked_by" in e.values() for e in export["edges"]
    ), export

    policy = a.put(
        "/v1/namespaces/_dakera_agent_kg/memory_policy", json={"working_ttl_seconds": 777}
    )
    assert policy.status_code == 200, policy.text
    read = b.get("/v1/namespaces/_dakera_agent_kg/memory_policy")
    assert read.json()["working_ttl_seconds"] == 777
    stored = b.post(
        "/v1/memory/store",
        json={"agent_id": "kg", "content": "scratch note", "memory_type": "working"},
    ).json()["memory"]
    assert stored["expires_at"] == stored["created_at"] + 777


def test_cluster_routes_list_both_nodes_and_maintenance_is_shared(
    nodes: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = nodes
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        listed = a.get("/v1/admin/cluster/nodes").json()
        if len(listed) == 2:
            break
        time.sleep(0.2)
    assert [n["status"] for n in listed] == ["healthy", "healthy"], listed
    assert sum(n["this_node"] for n in listed) == 1
    status = b.get("/v1/admin/cluster/status").json()
    assert (status["mode"], status["status"], status["node_count"]) == (
        "shared-store",
        "healthy",
        2,
    )
    assert status["leader"] is None and status["reasons"] == []
    replication = a.get("/v1/admin/cluster/replication").json()
    assert replication["mode"] == "shared-store" and replication["cache_nodes"] == 2
    shards = a.get("/v1/admin/cluster/shards").json()
    assert shards["total"] == 1 and len(shards["shards"][0]["nodes"]) == 2

    a.post("/v1/memory/store", json={"agent_id": "maint", "content": "before maintenance"})
    enabled = a.post("/v1/admin/cluster/maintenance/enable", json={"reason": "db upgrade"})
    assert enabled.status_code == 200, enabled.text
    assert sorted(enabled.json()["nodes"]) == sorted(n["node_id"] for n in listed)
    try:
        refused = b.post("/v1/memory/store", json={"agent_id": "maint", "content": "x"})
        assert refused.status_code == 503, refused.text  # the very next write on the other node
        assert refused.headers["Retry-After"] == "30"
        assert b.get("/v1/admin/cluster/maintenance").json()["enabled"] is True
        recalled = b.post("/v1/memory/recall", json={"agent_id": "maint", "query": "before"})
        assert recalled.status_code == 200 and recalled.json()["memories"]  # reads keep working
        assert a.post("/v1/memory/store", json={"agent_id": "m", "content": "x"}).status_code == 503
    finally:
        assert a.post("/v1/admin/cluster/maintenance/disable", json={}).status_code == 200
    again = b.post("/v1/memory/store", json={"agent_id": "maint", "content": "after"})
    assert again.status_code == 200, again.text


def test_deduplicated_on_a_is_restorable_on_b(nodes: tuple[httpx.Client, httpx.Client]) -> None:
    from dakera import DakeraClient

    a_http, b_http = nodes
    a = DakeraClient(str(a_http.base_url), api_key=ROOT_KEY)
    b = DakeraClient(str(b_http.base_url), api_key=ROOT_KEY)
    try:
        first = a.store_memory("dedup", "The user's favourite colour is blue.", importance=0.4)
        a.store_memory("dedup", "The user's favourite colour is blue!", importance=0.7)
        assert a.deduplicate("dedup")["removed_count"] == 1
        (entry,) = b.list_deduplicated("dedup").memories
        assert entry.id == first["id"]
        restored = b.restore_deduplicated("dedup", first["id"])
        assert restored["id"] == first["id"]
        assert a.list_deduplicated("dedup").count == 0
        assert a.get_memory("dedup", first["id"])["content"].endswith("blue.")
    finally:
        a.close()
        b.close()


def test_autopilot_config_and_quotas_set_on_a_reach_b(
    nodes: tuple[httpx.Client, httpx.Client],
) -> None:
    from dakera import DakeraClient

    a, b = nodes
    changed = a.put("/v1/admin/autopilot/config", json={"dedup_interval_hours": 7})
    assert changed.status_code == 200, changed.text
    sdk_a = DakeraClient(str(a.base_url), api_key=ROOT_KEY)
    try:
        sdk_a.admin_set_quota("quota-ns", {"max_vectors": 2, "enforcement": "hard"})
    finally:
        sdk_a.close()
    deadline = time.monotonic() + 5  # these reach B through its LISTEN wake-up
    while time.monotonic() < deadline:
        config = b.get("/v1/admin/autopilot/status").json()["config"]
        if config["dedup_interval_hours"] == 7:
            break
        time.sleep(0.05)
    assert config["dedup_interval_hours"] == 7
    for i in range(2):
        ok = b.post(
            "/v1/namespaces/quota-ns/vectors",
            json={"vectors": [{"id": f"q{i}", "values": [1.0, 0.0]}]},
        )
        assert ok.status_code == 200, ok.text
    over = b.post(
        "/v1/namespaces/quota-ns/vectors", json={"vectors": [{"id": "q9", "values": [1.0, 0.0]}]}
    )
    assert over.status_code >= 400, over.text  # the quota set on A holds on B


@pytest.mark.slow
def test_access_statistics_of_a_never_undo_an_update_or_a_forget_on_b(
    nodes: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = nodes
    ids = [
        a.post("/v1/memory/store", json={"agent_id": "stats", "content": f"Otter fact {i}"}).json()[
            "memory"
        ]["id"]
        for i in range(2)
    ]
    assert set(ids) <= set(_recall(a, "stats", "otter fact"))  # A now holds counters to flush
    updated = b.put(
        f"/v1/memory/update/{ids[0]}", params={"agent_id": "stats"}, json={"content": "Changed"}
    )
    assert updated.status_code == 200, updated.text
    forgot = b.post("/v1/memory/forget", json={"agent_id": "stats", "memory_ids": [ids[1]]})
    assert forgot.status_code == 200
    time.sleep(6.5)  # past A's access-statistics flush (every 5 s)
    assert b.get(f"/v1/memory/get/{ids[0]}?agent_id=stats").json()["content"] == "Changed"
    assert b.get(f"/v1/memory/get/{ids[1]}?agent_id=stats").status_code == 404
    assert a.get(f"/v1/memory/get/{ids[1]}?agent_id=stats").status_code == 404


def test_access_counts_flushed_on_a_reach_b_without_touching_its_indexes(
    nodes: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = nodes
    ids = [
        a.post(
            "/v1/memory/store", json={"agent_id": "counted", "content": f"Heron note {i}"}
        ).json()["memory"]["id"]
        for i in range(3)
    ]
    assert set(ids) <= set(_recall(b, "counted", "heron note"))  # B holds the agent
    before = {i: b.get(f"/v1/memory/get/{i}?agent_id=counted").json()["access_count"] for i in ids}
    for _ in range(3):
        assert set(ids) <= set(_recall(a, "counted", "heron note"))
    deadline = time.monotonic() + 20  # A flushes every 5 s; B applies it as counters
    while True:
        after = {
            i: b.get(f"/v1/memory/get/{i}?agent_id=counted").json()["access_count"] for i in ids
        }
        # A's three recalls arrive (across nodes a count is the larger of the two, not their
        # sum: B's own recall is not added; a documented gap of issue 13).
        if all(after[i] >= 3 > before[i] for i in ids) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert all(after[i] >= 3 > before[i] for i in ids), (before, after)
    assert set(ids) <= set(_recall(b, "counted", "heron note"))  # vectors and text still indexed
