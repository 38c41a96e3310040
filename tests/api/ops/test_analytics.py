"""Analytics, KPIs and Prometheus exposition checked against known traffic (§4.11)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from dakera import DakeraClient
from dakera.exceptions import ValidationError
from prometheus_client.parser import text_string_to_metric_families

from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import ROOT_KEY, RunningServer, start_server

RECALL = "POST /v1/memory/recall"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _route_count(client: Any) -> int:
    by_route = client.analytics_latency(period="1h")["by_route"]
    return int(by_route.get(RECALL, {}).get("count", 0))


def test_a_hundred_recalls_are_a_hundred_counted(client: Any, agent_id: str) -> None:
    namespace = f"_dakera_agent_{agent_id}"
    client.store_memory(agent_id, "The user drinks green tea every morning", importance=0.6)
    before = _route_count(client)
    for _ in range(100):
        client.recall(agent_id, "what does the user drink?", top_k=3)
    assert _route_count(client) == before + 100
    overview = client.analytics_overview(period="1h", namespace=namespace)
    assert overview["total_queries"] == 100
    assert overview["total_upserts"] == 1
    assert overview["records_written"] == 1
    assert overview["total_requests"] == 101
    assert (
        0 < overview["p50_latency_ms"] <= overview["p95_latency_ms"] <= overview["p99_latency_ms"]
    )
    latency = client.analytics_latency(period="24h", namespace=namespace)
    assert latency["count"] == 101
    assert latency["p50_ms"] <= latency["p99_ms"]
    throughput = client.analytics_throughput(period="1h", namespace=namespace)
    assert throughput["total_operations"] == 101
    assert throughput["by_operation"] == {"query": 100, "upsert": 1}
    assert throughput["queries_per_second"] > 0
    text = client.ops_metrics()
    samples = _samples(text)
    assert samples[("dakera_namespace_recalls_total", (("namespace", namespace),))] == 100.0
    assert samples[("dakera_namespace_records_total", (("namespace", namespace),))] == 1.0


def test_prometheus_scrape_and_ops_metrics_render_the_same_registry(
    server: RunningServer, client: Any
) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        scraped = anonymous.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    names = {family.name for family in text_string_to_metric_families(scraped.text)}
    assert {
        "dakera_http_requests",
        "dakera_http_request_duration_seconds",
        "dakera_namespace_recalls",
        "dakera_memories",
        "dakera_uptime_seconds",
    } <= names
    via_sdk = {family.name for family in text_string_to_metric_families(client.ops_metrics())}
    assert names == via_sdk
    histogram = next(
        f
        for f in text_string_to_metric_families(scraped.text)
        if f.name == "dakera_http_request_duration_seconds"
    )
    buckets = [s for s in histogram.samples if s.name.endswith("_bucket")]
    assert buckets and any(s.labels["le"] == "+Inf" for s in buckets)


def test_storage_and_stats_describe_what_is_held(client: Any, agent_id: str) -> None:
    name = f"ns-{agent_id}"[:60]
    client.upsert(name, [{"id": f"v{i}", "values": [float(i), 1.0, 0.0, 0.5]} for i in range(5)])
    storage = client.analytics_storage(namespace=name)
    assert storage["by_namespace"][name]["vector_count"] == 5
    assert storage["vector_bytes"] == 5 * 4 * 4
    whole = client.analytics_storage()
    assert whole["total_bytes"] > 0 and name in whole["by_namespace"]
    stats = client.ops_stats()
    assert stats["state"] == "healthy" and stats["total_vectors"] >= 5
    assert stats["version"] and stats["namespace_count"] >= 1


def test_kpis_parse_and_count_recent_work(client: Any, agent_id: str) -> None:
    client.start_session(agent_id)
    client.store_memory(agent_id, "KPI memory", importance=0.5)
    client.recall(agent_id, "KPI")
    kpis = client.get_kpis()
    assert kpis.session_count_week >= 1
    assert kpis.active_agents_count >= 1
    assert kpis.cross_agent_network_node_count >= 1
    assert kpis.recall_latency_p50_ms > 0
    assert 0.0 <= kpis.api_error_rate_5xx_pct <= 100.0


def test_a_bad_period_is_a_400_that_names_the_forms(client: Any) -> None:
    with pytest.raises(ValidationError, match="1h, 24h, 7d"):
        client.analytics_overview(period="yesterday")


def test_counters_survive_a_restart(tmp_path: Path, embedder: EmbeddingProvider) -> None:
    first = start_server(tmp_path, embedder)
    sdk = DakeraClient(first.url, api_key=ROOT_KEY)
    sdk.store_memory("restart-agent", "kept across restarts")
    for _ in range(7):
        sdk.recall("restart-agent", "kept")
    sdk.close()
    first.stop()  # a clean stop writes the last snapshot
    second = start_server(tmp_path, embedder)
    sdk = DakeraClient(second.url, api_key=ROOT_KEY)
    try:
        overview = sdk.analytics_overview(period="7d", namespace="_dakera_agent_restart-agent")
        assert overview["total_queries"] == 7
        assert overview["total_upserts"] == 1
        assert second.engine.ops.history.count() >= 1
    finally:
        sdk.close()
        second.stop()
