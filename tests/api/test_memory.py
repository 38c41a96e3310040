"""Memory routes through the official SDK, as a user would drive them (dakera-api.md §3.7-3.8)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from dakera.exceptions import NotFoundError, ValidationError


def test_store_answers_the_wrapped_memory_without_warnings(client: Any, agent_id: str) -> None:
    stored = client.store_memory(agent_id, "The user prefers dark roast coffee", importance=0.8)
    assert stored["id"].startswith("mem_")
    assert stored["content"] == "The user prefers dark roast coffee"
    assert stored["importance"] == 0.8
    assert stored["memory_type"] == "episodic"
    assert "warnings" not in stored
    assert "truncated" not in stored


def test_recall_finds_a_memory_right_after_store(client: Any, agent_id: str) -> None:
    client.store_memory(agent_id, "Anna moved to Lisbon in March for a new job", tags=["anna"])
    client.store_memory(agent_id, "The quarterly report is due on Friday", tags=["work"])
    answer = client.recall(agent_id, "Where does Anna live now?", top_k=2)
    assert answer.memories, "a memory must be recallable as soon as store returns"
    assert "Lisbon" in answer.memories[0].content
    scores = [m.score for m in answer.memories]
    assert scores == sorted(scores, reverse=True)


def test_recall_filters_by_tag_any_of(client: Any, agent_id: str) -> None:
    client.store_memory(agent_id, "Finish the budget spreadsheet", tags=["work"])
    client.store_memory(agent_id, "Anna loves the city of Porto", tags=["city", "anna"])
    answer = client.recall(agent_id, "what do I need to do", top_k=5, tags=["work"])
    contents = [m.content for m in answer.memories]
    assert contents == ["Finish the budget spreadsheet"]


def test_recall_filters_by_type_importance_and_session(client: Any, agent_id: str) -> None:
    client.store_memory(agent_id, "Tea is brewed at 80 degrees", memory_type="semantic")
    client.store_memory(agent_id, "I brewed tea this morning", importance=0.2, session_id="s:1")
    client.store_memory(agent_id, "Tea tasting on Sunday", importance=0.9, session_id="s:1")
    semantic = client.recall(agent_id, "tea", top_k=5, memory_type="semantic")
    assert [m.content for m in semantic.memories] == ["Tea is brewed at 80 degrees"]
    important = client.recall(agent_id, "tea", top_k=5, min_importance=0.85)
    assert [m.content for m in important.memories] == ["Tea tasting on Sunday"]
    in_session = client.recall(agent_id, "tea", top_k=5, session_id="s:1")
    assert len(in_session.memories) == 2


def test_recall_since_until_uses_event_time(client: Any, agent_id: str) -> None:
    client.store_memory(agent_id, "Trip to Rome", event_time=datetime(2019, 5, 1, tzinfo=UTC))
    client.store_memory(agent_id, "Trip to Oslo", event_time=datetime(2021, 5, 1, tzinfo=UTC))
    answer = client.recall(
        agent_id, "trip", top_k=5, since="2020-01-01T00:00:00Z", until="2022-01-01T00:00:00Z"
    )
    assert [m.content for m in answer.memories] == ["Trip to Oslo"]


def test_recall_of_an_agent_that_never_stored_is_empty(client: Any) -> None:
    assert client.recall("agent-that-never-stored", "anything").memories == []


def test_recall_top_k_prefix_is_stable(client: Any, agent_id: str) -> None:
    # Candidates whose relevance differs clearly: each adds more unrelated words to the same
    # phrase. Near-identical texts would be near-ties whose order may flip when the query's
    # embedding shares a forward pass with other texts (the micro-batcher: a batch's float
    # sums differ in the last bits from a lone pass), which is not what this test is about.
    filler = "while the kettle boils in the quiet kitchen on a rainy afternoon".split()
    for i in range(12):
        client.store_memory(
            agent_id, " ".join(["Tomato gardening notes", *filler[:i]]), importance=0.5
        )
    ten = [m.id for m in client.recall(agent_id, "tomato gardening", top_k=10).memories]
    for k in (1, 3, 7):
        assert [m.id for m in client.recall(agent_id, "tomato gardening", top_k=k).memories] == (
            ten[:k]
        )


def test_event_time_is_recorded_as_integer_seconds(client: Any, agent_id: str) -> None:
    stored = client.store_memory(agent_id, "Graduated", event_time=datetime(2019, 5, 1, tzinfo=UTC))
    assert stored["metadata"]["_dakera_event_time"] == 1556668800
    assert "warnings" not in stored
    fetched = client.get_memory(None, stored["id"])
    assert fetched["metadata"]["_dakera_event_time"] == 1556668800


def test_long_content_reports_truncation(client: Any, agent_id: str) -> None:
    text = " ".join(f"Sentence number {i} talks about something else." for i in range(400))
    stored = client.store_memory(agent_id, text)
    assert stored["truncated"] is True
    assert stored["content_tokens"] > stored["embedded_tokens"] == stored["max_tokens"]


def test_get_with_and_without_agent_id(client: Any, agent_id: str) -> None:
    stored = client.store_memory(agent_id, "Remember the milk")
    assert client.get_memory(agent_id, stored["id"])["content"] == "Remember the milk"
    assert client.get_memory(None, stored["id"])["agent_id"] == agent_id
    with pytest.raises(NotFoundError):
        client.get_memory(agent_id, "nonexistent-memory-id")


def test_same_client_id_in_two_agents_needs_agent_id(client: Any, agent_id: str) -> None:
    from dakera.models import BatchStoreMemoryItem, BatchStoreMemoryRequest

    for owner in (agent_id, agent_id + "-b"):
        client.store_memories_batch(
            BatchStoreMemoryRequest(
                agent_id=owner, memories=[BatchStoreMemoryItem(content="shared", id="dup-1")]
            )
        )
    with pytest.raises(ValidationError):
        client.get_memory(None, "dup-1")
    assert client.get_memory(agent_id, "dup-1")["agent_id"] == agent_id


def test_update_changes_content_and_reindexes(client: Any, agent_id: str) -> None:
    stored = client.store_memory(agent_id, "The meeting is on Monday")
    updated = client.update_memory(
        agent_id, stored["id"], content="The meeting moved to Thursday", tags=["cal"]
    )
    assert updated["content"] == "The meeting moved to Thursday"
    assert updated["tags"] == ["cal"]
    assert client.get_memory(agent_id, stored["id"])["content"] == updated["content"]
    top = client.recall(agent_id, "Thursday meeting", top_k=1).memories[0]
    assert top.id == stored["id"]


def test_forget_removes_the_memory(client: Any, agent_id: str) -> None:
    stored = client.store_memory(agent_id, "Temporary note")
    result = client.forget(agent_id, stored["id"])
    assert result["deleted_count"] == 1
    with pytest.raises(NotFoundError):
        client.get_memory(agent_id, stored["id"])
    assert client.recall(agent_id, "temporary note").memories == []


def test_search_flattens_envelopes(client: Any, agent_id: str) -> None:
    client.store_memory(agent_id, "Python lists are mutable", memory_type="semantic")
    found = client.search_memories(agent_id, "python", memory_type="semantic")
    assert found and found[0]["content"] == "Python lists are mutable"
    assert client.search_memories("nobody-here", "python") == []


def test_importance_update_sync_form(client: Any, agent_id: str) -> None:
    stored = client.store_memory(agent_id, "Key fact", importance=0.3)
    assert client.update_importance(agent_id, [stored["id"]], 0.95)
    assert client.get_memory(agent_id, stored["id"])["importance"] == 0.95


def test_batch_store_recall_and_forget(client: Any, agent_id: str) -> None:
    from dakera.models import (
        BatchForgetRequest,
        BatchMemoryFilter,
        BatchRecallRequest,
        BatchStoreMemoryItem,
        BatchStoreMemoryRequest,
    )

    response = client.store_memories_batch(
        BatchStoreMemoryRequest(
            agent_id=agent_id,
            memories=[
                BatchStoreMemoryItem(content="alpha", importance=0.9, tags=["a", "b"]),
                BatchStoreMemoryItem(content="beta", importance=0.4, tags=["a"]),
                BatchStoreMemoryItem(content="gamma", importance=0.7, session_id="urn:chat:42"),
            ],
        )
    )
    assert response.stored_count == 3
    assert len({m.id for m in response.stored}) == 3
    assert response.total_embedding_time_ms >= 0
    important = client.batch_recall(
        BatchRecallRequest(agent_id=agent_id, filter=BatchMemoryFilter(min_importance=0.5))
    )
    assert sorted(m.content for m in important.memories) == ["alpha", "gamma"]
    both_tags = client.batch_recall(
        BatchRecallRequest(agent_id=agent_id, filter=BatchMemoryFilter(tags=["a", "b"]))
    )
    assert [m.content for m in both_tags.memories] == ["alpha"]
    forgotten = client.batch_forget(
        BatchForgetRequest(agent_id=agent_id, filter=BatchMemoryFilter(tags=["a"]))
    )
    assert forgotten.deleted_count == 2
    rest = client.batch_recall(BatchRecallRequest(agent_id=agent_id))
    assert [m.content for m in rest.memories] == ["gamma"]


def test_batch_with_one_bad_item_writes_nothing(http: Any, agent_id: str) -> None:
    body = {
        "agent_id": agent_id,
        "memories": [{"content": "fine"}, {"content": "bad", "importance": 7}],
    }
    answer = http.post("/v1/memories/store/batch", json=body)
    assert answer.status_code == 400
    assert "importance" in answer.json()["error"]
    listed = http.post("/v1/memories/recall/batch", json={"agent_id": agent_id, "filter": {}})
    assert listed.json()["memories"] == []


def test_unknown_store_fields_are_reported(http: Any, agent_id: str) -> None:
    answer = http.post(
        "/v1/memory/store", json={"agent_id": agent_id, "content": "x", "when": "now"}
    ).json()
    assert answer["warnings"] == ["unknown field 'when' ignored"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content": "no agent"}, "agent_id"),
        ({"agent_id": "a"}, "content"),
        ({"agent_id": "a", "content": ""}, "content"),
        ({"agent_id": "a", "content": 5}, "content"),
        ({"agent_id": "a", "content": "x", "importance": 1.5}, "importance"),
        ({"agent_id": "a", "content": "x", "memory_type": "dream"}, "memory_type"),
        ({"agent_id": "a", "content": "x", "tags": ["t"] * 51}, "tags"),
        ({"agent_id": "a", "content": "x", "tags": ["t" * 257]}, "tags"),
        ({"agent_id": "a", "content": "x", "metadata": {"_dakera_x": 1}}, "_dakera_x"),
        ({"agent_id": "a", "content": "x", "id": "mem_s" + "a" * 24}, "id"),
        ({"agent_id": "a", "content": "x", "event_time": -5}, "event_time"),
        ({"agent_id": "bad id!", "content": "x"}, "agent_id"),
    ],
)
def test_store_refuses_bad_input_with_400(http: Any, body: dict[str, Any], field: str) -> None:
    answer = http.post("/v1/memory/store", json=body)
    assert answer.status_code == 400, answer.text
    assert set(answer.json()) == {"error", "code"}
    assert field in answer.json()["error"]


def test_content_limit_is_in_utf8_bytes(http: Any, agent_id: str) -> None:
    too_big = "é" * 50_001  # 100002 bytes
    answer = http.post("/v1/memory/store", json={"agent_id": agent_id, "content": too_big})
    assert answer.status_code == 400


def test_update_requires_agent_id_and_known_id(http: Any, agent_id: str) -> None:
    assert http.put("/v1/memory/update/x", json={"content": "y"}).status_code == 400
    missing = http.put(f"/v1/memory/update/nope?agent_id={agent_id}", json={"content": "y"})
    assert missing.status_code == 404


def test_async_client_round_trip(server: Any, agent_id: str) -> None:
    import asyncio

    from dakera import AsyncDakeraClient

    from tests.conftest import ROOT_KEY

    async def scenario() -> None:
        async with AsyncDakeraClient(server.url, api_key=ROOT_KEY) as sdk:
            stored = await sdk.store_memory(agent_id, "Async memories work too")
            recalled = await sdk.recall(agent_id, "async memories")
            assert recalled.memories[0].id == stored["id"]
            await sdk.update_importance(agent_id, [stored["id"]], 0.9)
            updated = await sdk.update_memory(agent_id, stored["id"], content="Changed async")
            assert updated["content"] == "Changed async"

    asyncio.run(scenario())
