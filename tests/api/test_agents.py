"""Agent routes through the SDK (dakera-api.md §3.10)."""

from __future__ import annotations

from typing import Any


def test_agent_views(client: Any, agent_id: str) -> None:
    client.store_memory(agent_id, "low", importance=0.1, memory_type="semantic")
    client.store_memory(agent_id, "high", importance=0.9)
    client.start_session(agent_id)
    listing = {a["agent_id"]: a for a in client.list_agents()}
    assert listing[agent_id]["memory_count"] == 2
    assert listing[agent_id]["active_sessions"] == 1
    memories = client.agent_memories(agent_id)
    assert {m["content"] for m in memories} == {"low", "high"}
    stats = client.agent_stats(agent_id)
    assert stats["total_memories"] == 2
    assert stats["memories_by_type"]["semantic"] == 1
    assert stats["total_sessions"] == 1
    assert len(client.agent_sessions(agent_id)) == 1
    woken = client.wake_up(agent_id, top_n=1)
    assert [m.content for m in woken.memories] == ["high"]
    assert woken.total_available == 2


def test_create_agent_twice(http: Any, agent_id: str) -> None:
    first = http.post("/v1/agents", json={"agent_id": agent_id})
    assert first.status_code == 201 and first.json()["created"] is True
    second = http.post("/v1/agents", json={"agent_id": agent_id})
    assert second.status_code == 200 and second.json()["created"] is False


def test_unknown_agent_views_are_empty(client: Any) -> None:
    assert client.agent_memories("ghost-agent") == []
    assert client.agent_stats("ghost-agent")["total_memories"] == 0
