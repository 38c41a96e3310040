"""Consolidation and compression (§3.7, §4.2) and session-end summaries, through the SDK."""

from __future__ import annotations

from typing import Any

import pytest
from dakera.exceptions import NotFoundError, ValidationError

from dakera_server.engine.lifecycle.consolidate import merge_contents
from dakera_server.engine.memory.models import Memory
from tests.conftest import RunningServer

SIMILAR = [
    f"Consolidation test memory variation {i}: similar content about testing" for i in range(3)
]
UNRELATED = ["Grace bakes sourdough on Sundays", "The invoice is due on Friday"]


def test_consolidate_without_ids_merges_the_similar_ones(
    server: RunningServer, client: Any, agent_id: str
) -> None:
    for text in UNRELATED:
        client.store_memory(agent_id, text, importance=0.9)
    similar = [
        client.store_memory(agent_id, t, importance=0.6, tags=[f"t{i}"])
        for i, t in enumerate(SIMILAR)
    ]
    subscription = server.engine.events.subscribe(
        lambda e: e.agent_id == agent_id and e.event_type == "consolidated"
    )
    try:
        result = client.consolidate(agent_id)
        event = subscription.queue.get(timeout=5)
    finally:
        subscription.close()
    merged = result["consolidated_memory"]
    assert sorted(result["source_memory_ids"]) == sorted(m["id"] for m in similar)
    assert result["memories_removed"] == 3
    assert all(text.split(":")[0] in merged["content"] for text in SIMILAR)
    assert sorted(merged["tags"]) == ["t0", "t1", "t2"] and merged["importance"] == 0.6
    assert event.memory_id == merged["id"]
    for memory in similar:
        with pytest.raises(NotFoundError):
            client.get_memory(agent_id, memory["id"])
    listed = client.list_deduplicated(agent_id)
    assert listed.count == 3
    assert {(e.kind, e.survivor_id) for e in listed.memories} == {("consolidation", merged["id"])}
    restored = client.restore_deduplicated(agent_id, similar[0]["id"])
    assert restored["content"] == SIMILAR[0]


def test_consolidate_chosen_ids_into_a_target_type(client: Any, agent_id: str) -> None:
    a = client.store_memory(agent_id, "Anna lives in Lisbon.")
    b = client.store_memory(agent_id, "Anna works as a nurse. Anna lives in Lisbon.")
    result = client.consolidate(agent_id, memory_ids=[a["id"], b["id"]], target_type="semantic")
    merged = result["consolidated_memory"]
    assert merged["memory_type"] == "semantic"
    assert merged["content"] == "Anna lives in Lisbon. Anna works as a nurse."
    assert merged["metadata"]["consolidated_from"] == [a["id"], b["id"]]
    with pytest.raises(ValidationError):
        client.consolidate(agent_id, memory_ids=[merged["id"]])
    with pytest.raises(NotFoundError):
        client.consolidate(agent_id, memory_ids=[merged["id"], "mem_nope"])
    with pytest.raises(ValidationError):
        client.consolidate(agent_id, memory_ids=[merged["id"], a["id"]], target_type="dream")


def test_consolidate_refuses_to_merge_unrelated_memories(client: Any, agent_id: str) -> None:
    for text in UNRELATED:
        client.store_memory(agent_id, text)
    with pytest.raises(ValidationError):
        client.consolidate(agent_id)


def test_agent_consolidation_clusters_and_protects_important_memories(
    client: Any, agent_id: str
) -> None:
    dupes = [
        client.store_memory(agent_id, "The wifi password is hunter2.", importance=0.5),
        client.store_memory(agent_id, "The wifi password is hunter2!", importance=0.6),
        client.store_memory(agent_id, "the wifi password is hunter2", importance=0.95),
    ]
    other = client.store_memory(agent_id, "Omar moved to Oslo last spring")
    result = client.consolidate_agent(agent_id)
    assert result["agent_id"] == agent_id
    assert result["memories_scanned"] == 4 and result["clusters_found"] == 1
    anchor = dupes[2]["id"]  # most important
    assert result["anchor_ids"] == [anchor]
    # The anchor is protected anyway; the other two fold into it.
    assert sorted(result["deprecated_ids"]) == sorted([dupes[0]["id"], dupes[1]["id"]])
    assert result["memories_deprecated"] == 2
    remaining = {m["id"] for m in client.agent_memories(agent_id)}
    assert remaining == {anchor, other["id"]}
    (entry,) = client.get_consolidation_log(agent_id)
    assert entry["anchor_ids"] == [anchor] and entry["memories_deprecated"] == 2
    assert isinstance(entry["timestamp"], int)
    again = client.consolidate_agent(agent_id)
    assert again["clusters_found"] == 0 and len(client.get_consolidation_log(agent_id)) == 2


def test_protected_members_are_never_deprecated(client: Any, agent_id: str) -> None:
    client.store_memory(agent_id, "The wifi password is hunter2.", importance=0.9)
    client.store_memory(agent_id, "The wifi password is hunter2!", importance=0.85)
    result = client.consolidate_agent(agent_id)
    assert result["clusters_found"] == 1 and result["memories_deprecated"] == 0
    assert len(client.agent_memories(agent_id)) == 2


def test_consolidation_config(client: Any, http: Any, agent_id: str) -> None:
    updated = client.patch_consolidation_config(agent_id, epsilon=0.5, min_samples=3)
    assert updated == {
        "agent_id": agent_id,
        "enabled": True,
        "epsilon": 0.5,
        "min_samples": 3,
        "soft_deprecation_days": 0,
    }
    client.store_memory(agent_id, "The wifi password is hunter2.")
    client.store_memory(agent_id, "The wifi password is hunter2!")
    assert client.consolidate_agent(agent_id)["clusters_found"] == 0  # needs 3 now
    for body in ({"epsilon": 0}, {"min_samples": 1}, {"soft_deprecation_days": -1}):
        answer = http.patch(f"/v1/agents/{agent_id}/consolidation/config", json=body)
        assert answer.status_code == 400, body
    client.patch_consolidation_config(agent_id, min_samples=2, soft_deprecation_days=30)
    client.consolidate_agent(agent_id)
    (entry,) = client.list_deduplicated(agent_id).memories
    assert entry.restorable_until - entry.deleted_at == 30 * 86400  # longer than the 168 h


def test_compress_summarises_a_cluster(client: Any, agent_id: str) -> None:
    notes = [
        "Sprint planning: the team agreed to ship the login page.",
        "Sprint planning: the team agreed to ship the login page. Ben will test it.",
        "Sprint planning: the team agreed to ship the login page. Carla reviews the code.",
    ]
    originals = [client.store_memory(agent_id, text)["id"] for text in notes]
    client.store_memory(agent_id, "Grace bakes sourdough on Sundays")
    result = client.compress_agent(agent_id)
    assert (result.clusters_found, result.summaries_created) == (1, 1)
    assert sorted(result.deprecated_ids) == sorted(originals)
    assert result.originals_deprecated == 3 and result.summaries_skipped == []
    assert (result.memories_before, result.memories_after) == (4, 2)
    summary = client.get_memory(agent_id, result.summary_ids[0])
    assert summary["memory_type"] == "semantic"
    for sentence in ("ship the login page", "Ben will test it", "Carla reviews the code"):
        assert sentence in summary["content"]


def test_compress_skips_a_summary_that_fails_validation(client: Any, agent_id: str) -> None:
    shared = " ".join(f"Fact number {i} about the warehouse inventory." for i in range(60))
    ids = [
        client.store_memory(agent_id, f"{shared} Extra detail {letter} " + "x" * 1500)["id"]
        for letter in "abc"
    ]
    result = client.compress_agent(agent_id)
    assert result.clusters_found == 1 and result.summaries_created == 0
    (skipped,) = result.summaries_skipped
    assert "longer than" in skipped.reason
    assert {m["id"] for m in client.agent_memories(agent_id)} == set(ids)  # originals kept


def test_ending_a_session_links_its_summary(client: Any, http: Any, agent_id: str) -> None:
    session = client.start_session(agent_id)
    first = client.store_memory(agent_id, "Booked flights to Kyoto", session_id=session["id"])
    second = client.store_memory(agent_id, "Reserved a ryokan", session_id=session["id"])
    client.end_session(session["id"], summary="Trip to Kyoto is booked")
    summary = next(
        m for m in client.agent_memories(agent_id) if m["content"] == "Trip to Kyoto is booked"
    )
    assert sorted(summary["metadata"]["session_memory_ids"]) == sorted([first["id"], second["id"]])
    assert summary["metadata"]["session_memory_count"] == 2
    edges = http.get(f"/v1/agents/{agent_id}/graph/export").json()["edges"]
    links = {
        e["to_id"]
        for e in edges
        if e["from_id"] == summary["id"]
        and e["edge_type"] == "linked_by"
        and e.get("label") == "session-summary"
    }
    assert links == {first["id"], second["id"]}


def _memory(content: str) -> Memory:
    return Memory(id="m", agent_id="a", content=content)


def test_merge_contents_drops_repeats_but_keeps_distinct_words() -> None:
    merged = merge_contents(
        [
            _memory("I like tea. I like team sports!"),
            _memory("i like tea"),
            _memory("I like tea a lot."),
        ]
    )
    assert merged == "I like team sports! I like tea a lot."
