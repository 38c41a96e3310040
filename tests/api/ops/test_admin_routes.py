"""Index, cache, storage, cluster and maintenance administration (§5), and the ops routes
(§4.11): what each answers about this server, checked against what it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from dakera import DakeraClient
from dakera.exceptions import NotFoundError, ServiceUnavailableError, ValidationError

from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import ROOT_KEY, start_server


def test_index_stats_rebuild_and_optimize(client: Any, agent_id: str) -> None:
    name = f"ix-{agent_id}"[:60]
    client.upsert(name, [{"id": f"v{i}", "values": [1.0, float(i), 2.0]} for i in range(6)])
    stats = client.index_stats()
    entry = stats["namespaces"][name]
    assert entry["total_vectors"] == 6 and entry["dimension"] == 3 and entry["is_built"]
    assert stats["total_indexed_vectors"] >= 6
    rebuilt = client.rebuild_indexes(name)
    assert rebuilt["success"] and rebuilt["namespaces"] == [name] and rebuilt["vectors"] == 6
    assert client.ops_get_job(rebuilt["job_id"])["status"] == "completed"
    optimized = client.optimize_namespace(name)
    assert optimized["optimized"] and optimized["vectors"] == 6
    assert client.query(name, [1.0, 5.0, 2.0], top_k=1).results[0].id == "v5"
    assert client.index_stats()["namespaces"][name]["last_rebuild"] is not None
    with pytest.raises(NotFoundError):
        client.rebuild_indexes("no-such-namespace-x")


def test_fulltext_reindex_and_derivations(client: Any, agent_id: str) -> None:
    client.store_memory(agent_id, "BM25 indexed memory")
    answer = client.admin_fulltext_reindex(namespace=f"_dakera_agent_{agent_id}")
    assert answer.namespaces_processed == 1 and answer.total_skipped == 1
    assert answer.details[0].newly_indexed == 0
    status = client.derivations_status()
    assert status.namespaces >= 1
    drained = client.drain_derivations(timeout_secs=30)
    assert drained.settled and not drained.timed_out


def test_what_this_server_does_not_have_answers_its_true_state(client: Any) -> None:
    cache = client.cache_stats()
    assert cache["enabled"] is False and cache["hits"] == 0 and cache["entries"] == 0
    assert client.cache_clear()["entries_cleared"] == 0
    assert client.cache_clear("docs")["entries_cleared"] == 0
    assert client.admin_reembed_static_count().static_count == 0
    drained = client.drain_reembed()
    assert (drained.processed, drained.remaining, drained.timed_out) == (0, 0, False)
    tiers = client.storage_tier_overview()
    assert not tiers.tiers_enabled and len(tiers.architecture) == 1
    assert tiers.activity.promotions == 0 and tiers.config.auto_tier_enabled is False


def test_async_cache_clear_alias(server: Any) -> None:
    with server.http() as http:
        answer = http.post(
            "/v1/admin/cache/clear/docs", headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 200 and answer.json()["namespace"] == "docs"


def test_memory_types_and_background_activity(client: Any, agent_id: str) -> None:
    before = client.memory_type_stats()
    client.store_memory(agent_id, "a fact", memory_type="semantic")
    client.store_memory(agent_id, "how to", memory_type="procedural")
    after = client.memory_type_stats()
    assert after.semantic == before.semantic + 1
    assert after.procedural == before.procedural + 1
    assert after.total == before.total + 2
    activity = client.background_activity()
    assert "autopilot" in activity and "metrics" in activity


def test_migrate_dimensions_reports_each_namespace(client: Any, agent_id: str) -> None:
    name = f"md-{agent_id}"[:60]
    client.upsert(name, [{"id": "a", "values": [1.0, 0.0]}])
    answer = client.migrate_namespace_dimensions(target_dimension=2, namespaces=[name])
    assert answer.already_current == 1 and answer.results[0].status == "already_current"
    other = client.migrate_namespace_dimensions(target_dimension=4, namespaces=[name])
    assert other.failed == 1 and other.results[0].error


def test_cluster_routes_describe_one_node(client: Any) -> None:
    status = client.cluster_status()
    assert status["node_count"] == 1 and status["state"] == "healthy"
    nodes = client.cluster_nodes()
    assert len(nodes) == 1 and nodes[0]["role"] == "leader"
    assert client.admin_cluster_replication()["replication_factor"] == 1
    assert client.admin_list_shards()["total"] == 1
    assert client.admin_rebalance_shards(dry_run=True)["moves"] == []
    assert client.admin_maintenance_status()["enabled"] is False


def test_route_query_picks_the_namespace_about_the_query(client: Any, agent_id: str) -> None:
    cooking, astronomy = f"cook-{agent_id}"[:50], f"astro-{agent_id}"[:50]
    client.upsert_text(cooking, [{"id": "1", "text": "Simmer the tomato sauce with basil"}])
    client.upsert_text(cooking, [{"id": "2", "text": "Knead the bread dough and bake it"}])
    client.upsert_text(astronomy, [{"id": "1", "text": "Jupiter's moons orbit the planet"}])
    client.upsert_text(astronomy, [{"id": "2", "text": "A telescope shows distant galaxies"}])
    answer = client.route_query("how long should I bake bread", top_k=5, min_similarity=0.0)
    ranked = [r.namespace for r in answer.routes if r.namespace in (cooking, astronomy)]
    assert ranked[0] == cooking
    assert answer.model and answer.embedding_time_ms >= 0


def test_compact_reports_bytes_before_and_after(client: Any) -> None:
    answer = client.compact(force=True)
    report = answer["report"]
    assert report["bytes_before"] > 0 and report["bytes_after"] > 0
    assert report["vacuumed"] is True and report["wal_bytes_after"] == 0
    assert client.ops_get_job(answer["job_id"])["type"] == "compaction"


def test_diagnostics_describe_the_process(client: Any) -> None:
    diagnostics = client.ops_diagnostics()
    assert diagnostics["resources"]["memory_bytes"] > 0
    assert diagnostics["system"]["pid"] > 0
    assert diagnostics["components"]["storage"]["disk"]["total"] > 0


def test_admin_vector_export_import_and_versions(client: Any, agent_id: str) -> None:
    name = f"av-{agent_id}"[:60]
    with httpx.Client(
        base_url=client.base_url, headers={"Authorization": f"Bearer {ROOT_KEY}"}
    ) as http:
        imported = http.post(
            f"/v1/admin/vectors/{name}/import",
            json={"vectors": [{"id": "a", "values": [1.0, 2.0], "metadata": {"k": 1}}]},
        )
        assert imported.status_code == 200 and imported.json()["imported"] == 1
        exported = http.get(f"/v1/admin/vectors/{name}/export").json()
        assert exported["vectors"] == [{"id": "a", "values": [1.0, 2.0], "metadata": {"k": 1}}]
        versions = http.get(f"/v1/admin/vectors/{name}/a/versions").json()
        assert versions["total"] == 1
        version = versions["versions"][0]["version"]
        assert http.get(f"/v1/admin/vectors/{name}/a/versions/{version}").status_code == 200
        assert http.get(f"/v1/admin/vectors/{name}/a/versions/{version + 7}").status_code == 404


def test_debug_config_never_shows_a_secret(tmp_path: Path, embedder: EmbeddingProvider) -> None:
    server = start_server(
        tmp_path,
        embedder,
        grpc_enabled=False,
        encryption_key="a-long-passphrase-for-tests",
        ode_url="http://sidecar:hunter2-password@127.0.0.1:9/",
        redis_url="redis://:redis-secret@127.0.0.1:1/0",
    )
    try:
        with server.http() as http:
            response = http.get("/debug/config")
        text = response.text
        body = response.json()
        for secret in (ROOT_KEY, "a-long-passphrase-for-tests", "hunter2-password", "redis-secret"):
            assert secret not in text
        assert body["DAKERA_ODE_URL"] == "http://sidecar:***@127.0.0.1:9/"
        assert "DAKERA_ROOT_API_KEY" not in body and "DAKERA_ENCRYPTION_KEY" not in body
        assert set(body["_withheld"]) >= {"DAKERA_ROOT_API_KEY", "DAKERA_ENCRYPTION_KEY"}
        assert body["_version"] and body["DAKERA_PORT"] == 0
    finally:
        server.stop()


def test_maintenance_mode_refuses_the_data_plane_only(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    server = start_server(tmp_path, embedder, grpc_enabled=False)
    client = DakeraClient(server.url, api_key=ROOT_KEY, max_retries=1)
    try:
        client.store_memory("mm-agent", "before maintenance")
        enabled = client.admin_enable_maintenance("disk swap", reject_requests=True)
        assert enabled["enabled"] and enabled["reason"] == "disk swap"
        with httpx.Client(base_url=server.url) as http:
            refused = http.post(
                "/v1/memory/recall",
                json={"agent_id": "mm-agent", "query": "x"},
                headers={"Authorization": f"Bearer {ROOT_KEY}"},
            )
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "30"
            assert refused.json()["code"] == "SERVICE_UNAVAILABLE"
            assert http.get("/health").status_code == 200
        with pytest.raises(ServiceUnavailableError):
            client.recall("mm-agent", "x")
        assert client.admin_maintenance_status()["enabled"] is True
        assert client.ops_stats()["state"] == "degraded"
        client.admin_disable_maintenance()
        assert client.recall("mm-agent", "before").memories
        with pytest.raises(ValidationError):
            client.admin_enable_maintenance("x", reject_requests=True, duration_minutes=0)
    finally:
        client.close()
        server.stop()
