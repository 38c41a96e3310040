"""Deduplication (§3.7, §4.2, §4.3): report, merge, restore, through the SDK and HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from dakera.exceptions import ConflictError, NotFoundError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import RunningServer

BLUE = "The user's favourite colour is blue."
BLUE_TOO = "The user's favourite colour is blue!"
PARIS = "Paris is the capital of France."


def _live_ids(client: Any, agent_id: str) -> set[str]:
    return {m["id"] for m in client.agent_memories(agent_id, limit=1000)}


def test_a_fresh_agent_has_nothing_deduplicated(client: Any, agent_id: str) -> None:
    client.store_memory(agent_id, PARIS)
    listed = client.list_deduplicated(agent_id)
    assert (listed.agent_id, listed.count, listed.memories) == (agent_id, 0, [])


def test_dry_run_reports_and_changes_nothing(client: Any, agent_id: str) -> None:
    a = client.store_memory(agent_id, BLUE, importance=0.4)
    b = client.store_memory(agent_id, BLUE_TOO, importance=0.7)
    client.store_memory(agent_id, PARIS)
    report = client.deduplicate(agent_id, dry_run=True)
    assert report["duplicates_found"] == 1
    assert report["duplicates_merged"] == report["removed_count"] == 0
    assert report["groups"] == [[b["id"], a["id"]]]  # the more important one survives
    assert len(_live_ids(client, agent_id)) == 3


def test_merge_folds_into_the_survivor_and_restore_brings_it_back(
    server: RunningServer, client: Any, agent_id: str
) -> None:
    a = client.store_memory(agent_id, BLUE, importance=0.4, tags=["colour"])
    b = client.store_memory(agent_id, BLUE_TOO, importance=0.7, tags=["prefs"])
    paris = client.store_memory(agent_id, PARIS)
    subscription = server.engine.events.subscribe(lambda e: e.agent_id == agent_id)
    try:
        report = client.deduplicate(agent_id)
        event = subscription.queue.get(timeout=5)
    finally:
        subscription.close()
    assert (report["duplicates_merged"], report["removed_count"]) == (1, 1)
    assert report["duplicates_skipped_changed"] == 0
    assert (event.event_type, event.memory_id) == ("deduplicated", a["id"])
    assert event.reason == f"absorbed into {b['id']}"
    assert _live_ids(client, agent_id) == {b["id"], paris["id"]}
    survivor = client.get_memory(agent_id, b["id"])
    assert survivor["tags"] == ["prefs", "colour"] and survivor["importance"] == 0.7
    (entry,) = client.list_deduplicated(agent_id).memories
    assert (entry.id, entry.kind, entry.survivor_id) == (a["id"], "deduplication", b["id"])
    assert entry.restorable_until == entry.deleted_at + 168 * 3600
    restored = client.restore_deduplicated(agent_id, a["id"])
    assert restored["id"] == a["id"] and restored["content"] == BLUE
    assert restored["tags"] == ["colour"] and restored["importance"] == 0.4
    assert client.list_deduplicated(agent_id).count == 0
    assert client.recall(agent_id, "favourite colour", top_k=3).memories  # searchable again
    with pytest.raises(NotFoundError):
        client.restore_deduplicated(agent_id, a["id"])


def test_restore_conflicts_when_the_id_is_taken_again(
    http: Any, client: Any, agent_id: str
) -> None:
    with pytest.raises(NotFoundError):
        client.restore_deduplicated(agent_id, "mem_does_not_exist")
    stored = http.post(
        "/v1/memory/store",
        json={"agent_id": agent_id, "content": BLUE, "id": "colour-note", "importance": 0.2},
    )
    assert stored.status_code == 200
    client.store_memory(agent_id, BLUE_TOO, importance=0.9)
    assert client.deduplicate(agent_id)["removed_count"] == 1
    again = http.post(
        "/v1/memory/store", json={"agent_id": agent_id, "content": "reused", "id": "colour-note"}
    )
    assert again.status_code == 200
    with pytest.raises(ConflictError):
        client.restore_deduplicated(agent_id, "colour-note")
    answer = http.post(f"/v1/memory/deduplicated/colour-note/restore?agent_id={agent_id}")
    assert (answer.status_code, answer.json()["code"]) == (409, "CONFLICT")


def test_sessions_stay_apart_unless_cross_session(client: Any, agent_id: str) -> None:
    client.store_memory(agent_id, BLUE, session_id="s:1")
    client.store_memory(agent_id, BLUE_TOO, session_id="s:2")
    assert client.deduplicate(agent_id, dry_run=True)["duplicates_found"] == 0
    try:
        client.autopilot_update_config(dedup_cross_session=True)
        assert client.deduplicate(agent_id, dry_run=True)["duplicates_found"] == 1
    finally:
        client.autopilot_update_config(dedup_cross_session=False)


def test_threshold_and_type_narrow_the_search(client: Any, agent_id: str) -> None:
    client.store_memory(agent_id, "I walked the dog in the park this morning")
    client.store_memory(agent_id, "This morning I took the dog for a walk in the park")
    assert client.deduplicate(agent_id, dry_run=True, threshold=0.99)["duplicates_found"] == 0
    assert client.deduplicate(agent_id, dry_run=True, threshold=0.7)["duplicates_found"] == 1
    semantic = client.deduplicate(agent_id, dry_run=True, threshold=0.7, memory_type="semantic")
    assert semantic["duplicates_found"] == 0


def test_invisible_agent_is_an_empty_report(server: RunningServer, agent_id: str) -> None:
    with server.http() as http:
        answer = http.post(
            "/v1/knowledge/deduplicate", json={"agent_id": agent_id + "-nobody", "dry_run": False}
        )
    assert answer.status_code == 200
    assert answer.json()["removed_count"] == 0 and answer.json()["groups"] == []


TOPICS = (
    "the garden needs watering",
    "the invoice is due on Friday",
    "Maya is learning Japanese",
    "the car needs new tyres",
    "Omar moved to Oslo",
    "the dentist appointment is at noon",
)


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(copies=st.lists(st.integers(min_value=1, max_value=3), min_size=2, max_size=len(TOPICS)))
def test_merging_never_loses_or_doubles_a_memory(client: Any, copies: list[int]) -> None:
    """Whatever mix of repeats: live + trash = everything stored, with no id in both."""
    agent_id = f"dedup-prop-{abs(hash(tuple(copies))) % 10**9}-{len(copies)}"
    stored = set()
    for topic, count in zip(TOPICS, copies, strict=False):
        for i in range(count):
            text = f"Note: {topic}." if i == 0 else f"Note: {topic}{'!' * i}"
            stored.add(client.store_memory(agent_id, text)["id"])
    report = client.deduplicate(agent_id)
    live = _live_ids(client, agent_id)
    trashed = {m.id for m in client.list_deduplicated(agent_id).memories}
    assert live | trashed == stored and not live & trashed
    assert report["removed_count"] == len(trashed)
    assert client.deduplicate(agent_id, dry_run=True)["duplicates_found"] == 0
    for memory_id in trashed:  # and all of it comes back
        client.restore_deduplicated(agent_id, memory_id)
    assert _live_ids(client, agent_id) == stored
    for memory_id in stored:  # examples may repeat an agent id
        client.forget(agent_id, memory_id)
