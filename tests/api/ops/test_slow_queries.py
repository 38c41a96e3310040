"""The slow-query log (§5): a recall made slow by its embedding endpoint is recorded with its
route, namespace, duration, top_k and filter shape — and without its text under encryption."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from dakera import DakeraClient
from dakera.exceptions import ValidationError

from tests.api.ops.slow_embedder import DIMENSION, SLOW_MARKER, slow_embedder
from tests.conftest import ROOT_KEY, start_server

ENCRYPTION_KEY = "ab" * 32
SECRET_QUESTION = f"{SLOW_MARKER} where did Alice hide the spare key"


@pytest.fixture(scope="module")
def encrypted_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with slow_embedder() as url:
        server = start_server(
            tmp_path_factory.mktemp("slowlog"),
            None,
            embedding_provider="openai",
            embedding_url=url,
            embedding_model="fake-embedder",
            embedding_dimension=DIMENSION,
            encryption_key=ENCRYPTION_KEY,
            grpc_enabled=False,
        )
        client = DakeraClient(server.url, api_key=ROOT_KEY)
        yield client
        client.close()
        server.stop()


def test_a_slow_recall_is_logged_without_its_text(encrypted_client: Any) -> None:
    client = encrypted_client
    # 1 s: a plain recall stays under it even on a loaded machine; the marked one takes 1.5 s.
    config = client.admin_update_slow_query_config(threshold_ms=1000)
    assert config["threshold_ms"] == 1000 and config["records_query_text"] is False
    client.store_memory("slow-agent", "Alice hid the spare key under the mat", importance=0.7)
    client.recall("slow-agent", "a quick question", top_k=4)
    client.recall("slow-agent", SECRET_QUESTION, top_k=7, tags=["home"], min_importance=0.2)
    entries = client.slow_queries(limit=10)
    assert len(entries) == 1, entries
    entry = entries[0]
    assert entry["route"] == "/v1/memory/recall"
    assert entry["namespace"] == "_dakera_agent_slow-agent"
    assert entry["duration_ms"] >= 1000
    assert entry["top_k"] == 7
    assert entry["filter_shape"] == {"min_importance": "number", "tags": ["string"]}
    assert "Alice" not in json.dumps(entries) and "spare key" not in json.dumps(entries)
    summary = client.admin_slow_query_summary()
    assert summary["total"] == 1 and summary["by_query_type"]["recall"]["count"] == 1
    assert client.admin_list_slow_queries(namespace="other") == []
    assert client.admin_clear_slow_queries(namespace="_dakera_agent_slow-agent")["cleared"] == 1
    assert client.slow_queries() == []


def test_vector_queries_are_logged_too(encrypted_client: Any) -> None:
    client = encrypted_client
    client.admin_update_slow_query_config(threshold_ms=0)
    try:
        client.upsert("slow-vectors", [{"id": "a", "values": [1.0, 0.0, 0.0]}])
        client.query("slow-vectors", [1.0, 0.0, 0.0], top_k=2, filter={"kind": {"$eq": "x"}})
        entry = client.admin_list_slow_queries(query_type="query", limit=1)[0]
        assert entry["namespace"] == "slow-vectors"
        assert entry["filter_shape"] == {"kind": {"$eq": "string"}}
        assert entry["parameters"]["vector_dimension"] == 3
        assert "values" not in json.dumps(entry)
    finally:
        client.admin_update_slow_query_config(threshold_ms=500)


def test_query_text_is_kept_without_encryption(client: Any, agent_id: str) -> None:
    client.admin_update_slow_query_config(threshold_ms=0)
    try:
        client.store_memory(agent_id, "plain memory")
        client.recall(agent_id, "a plain question")
        entry = client.admin_list_slow_queries(namespace=f"_dakera_agent_{agent_id}")[0]
        assert entry["parameters"]["query"] == "a plain question"
    finally:
        client.admin_update_slow_query_config(threshold_ms=500)


def test_bad_slow_query_config_is_a_400(client: Any) -> None:
    with pytest.raises(ValidationError, match="threshold_ms"):
        client.admin_update_slow_query_config(threshold=5)
    with pytest.raises(ValidationError, match="slow_query_threshold_ms"):
        client.admin_update_slow_query_config(threshold_ms=-1)
