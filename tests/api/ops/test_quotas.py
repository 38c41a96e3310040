"""Quotas (§5): configuration, usage, the check route, and enforcement in the write paths."""

from __future__ import annotations

from typing import Any

import pytest
from dakera.exceptions import NotFoundError, PayloadTooLargeError, ValidationError
from dakera.models import BatchStoreMemoryItem, BatchStoreMemoryRequest


def _vectors(start: int, count: int) -> list[dict[str, Any]]:
    return [{"id": f"v{i}", "values": [1.0, float(i), 0.5]} for i in range(start, start + count)]


def test_a_quota_of_ten_vectors_refuses_the_eleventh(client: Any, agent_id: str) -> None:
    name = f"q-{agent_id}"[:60]
    client.update_quotas({"max_vectors": 10}, namespace=name)
    client.upsert(name, _vectors(0, 10))
    with pytest.raises(PayloadTooLargeError) as refused:
        client.upsert(name, _vectors(10, 1))
    assert refused.value.is_quota
    assert "max_vectors" in str(refused.value)
    assert client.get_namespace(name).vector_count == 10
    client.upsert(name, _vectors(0, 3))  # replacing existing ids adds nothing: allowed
    status = client.admin_get_quota(name)
    assert status["usage"]["vector_count"] == 10
    assert status["vector_usage_percent"] == 100.0
    assert status["config"]["max_vectors"] == 10 and status["source"] == "namespace"


def test_a_refused_batch_writes_nothing(client: Any, agent_id: str) -> None:
    name = f"qb-{agent_id}"[:60]
    client.admin_set_quota(name, {"max_vectors": 10, "enforcement": "hard"})
    client.upsert(name, _vectors(0, 9))
    with pytest.raises(PayloadTooLargeError):
        client.upsert(name, _vectors(9, 3))
    assert client.get_namespace(name).vector_count == 9
    assert client.count_vectors(name)["count"] == 9


def test_agent_memories_are_limited_too(client: Any, agent_id: str) -> None:
    namespace = f"_dakera_agent_{agent_id}"
    client.admin_set_quota(namespace, {"max_memories": 2})
    client.store_memory(agent_id, "first")
    client.store_memory(agent_id, "second")
    with pytest.raises(PayloadTooLargeError, match="max_memories"):
        client.store_memory(agent_id, "third")
    with pytest.raises(PayloadTooLargeError):
        client.store_memories_batch(
            BatchStoreMemoryRequest(
                agent_id=agent_id,
                memories=[BatchStoreMemoryItem(content="a"), BatchStoreMemoryItem(content="b")],
            )
        )
    assert len(client.agent_memories(agent_id)) == 2


def test_dimension_and_metadata_limits(client: Any, agent_id: str) -> None:
    name = f"qd-{agent_id}"[:60]
    client.admin_set_quota(name, {"max_dimensions": 3, "max_metadata_bytes": 40})
    with pytest.raises(PayloadTooLargeError, match="max_dimensions"):
        client.upsert(name, [{"id": "x", "values": [1.0, 2.0, 3.0, 4.0]}])
    with pytest.raises(PayloadTooLargeError, match="max_metadata_bytes"):
        client.upsert(name, [{"id": "x", "values": [1.0, 2.0, 3.0], "metadata": {"t": "y" * 60}}])
    client.upsert(name, [{"id": "x", "values": [1.0, 2.0, 3.0], "metadata": {"t": "ok"}}])


def test_soft_quotas_let_writes_through(client: Any, agent_id: str) -> None:
    name = f"qs-{agent_id}"[:60]
    client.admin_set_quota(name, {"max_vectors": 1, "enforcement": "soft"})
    client.upsert(name, _vectors(0, 3))
    status = client.admin_get_quota(name)
    assert status["is_exceeded"] and status["exceeded"] == ["max_vectors"]


def test_check_counts_only_new_ids_and_writes_nothing(client: Any, agent_id: str) -> None:
    name = f"qc-{agent_id}"[:60]
    client.admin_set_quota(name, {"max_vectors": 3})
    client.upsert(name, _vectors(0, 2))
    fits = client.admin_check_quota(name, ["v0", "v1", "v2"], dimensions=3)
    assert fits["allowed"] and fits["new_vectors"] == 1
    over = client.admin_check_quota(name, ["v5", "v6"])
    assert not over["allowed"] and over["exceeded"] == ["max_vectors"]
    assert client.get_namespace(name).vector_count == 2


def test_default_quota_applies_until_a_namespace_has_its_own(client: Any, agent_id: str) -> None:
    name = f"qx-{agent_id}"[:60]
    try:
        answer = client.update_quotas({"max_vectors": 1_000_000, "max_dimensions": 8})
        assert answer["namespace"] == "_default"
        assert client.admin_get_default_quota()["config"]["max_dimensions"] == 8
        with pytest.raises(PayloadTooLargeError, match="max_dimensions"):
            client.upsert(name, [{"id": "a", "values": [0.1] * 9}])
        listed = client.get_quotas()
        assert listed["default_config"]["max_vectors"] == 1_000_000
        client.admin_set_quota(name, {"max_dimensions": 16})
        client.upsert(name, [{"id": "a", "values": [0.1] * 9}])
        client.admin_delete_quota(name)
        with pytest.raises(NotFoundError):
            client.admin_delete_quota(name)
    finally:
        client.admin_set_default_quota(None)
    assert client.admin_get_default_quota()["config"] is None


def test_bad_quota_configs_are_400s_naming_the_fields(client: Any) -> None:
    with pytest.raises(ValidationError, match="max_vectors"):
        client.admin_set_quota("qz", {"max_vectorz": 3})
    with pytest.raises(ValidationError, match="enforcement"):
        client.admin_set_quota("qz", {"enforcement": "strict"})
    with pytest.raises(ValidationError):
        client.admin_set_quota("qz", {"max_vectors": -1})


def test_quota_changes_are_audited(client: Any, http: Any, agent_id: str) -> None:
    name = f"qa-{agent_id}"[:60]
    client.admin_set_quota(name, {"max_vectors": 5})
    events = http.get("/v1/audit", params={"event_type": "quota_changed"}).json()["events"]
    assert any(e.get("namespace") == name for e in events)
