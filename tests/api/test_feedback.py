"""Feedback and importance (§4.1) through the SDK: signals, history, T-I-F, ranking effects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dakera.exceptions import NotFoundError, ValidationError
from dakera.models import FeedbackSignal

from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.api.lifecycle_support import DAY, FakeClock, clock_server
from tests.conftest import RunningServer

FACT = "The staging database password rotates every Monday"
DISTRACTORS = ("Grace bakes bread on Sundays", "Hiro plays the cello", "Budget review on Thursday")


def _copies(client: Any, agent_id: str, n: int = 2) -> list[str]:
    """``n`` copies of ``FACT`` (tied on relevance) among unrelated memories."""
    for text in DISTRACTORS:
        client.store_memory(agent_id, text)
    return [client.store_memory(agent_id, FACT, tags=[f"copy{i}"])["id"] for i in range(n)]


def _order(client: Any, agent_id: str) -> list[str]:
    found = client.recall(agent_id, "staging database password", top_k=10, routing="vector")
    return [m.id for m in found.memories if m.content == FACT]


def test_upvote_downvote_and_aliases(client: Any, agent_id: str) -> None:
    memory = client.store_memory(agent_id, FACT, importance=0.5)
    up = client.feedback_memory(memory["id"], agent_id, "upvote")
    assert up.memory_id == memory["id"]
    assert up.signal is FeedbackSignal.UPVOTE
    assert up.new_importance == pytest.approx(0.575)
    down = client.feedback_memory(memory["id"], agent_id, FeedbackSignal.DOWNVOTE)
    assert down.new_importance == pytest.approx(0.575 * 0.85)
    # Aliases are answered under the canonical name (the SDK enum is strict).
    alias = client.memory_feedback(agent_id, memory["id"], "positive")
    assert alias["signal"] == "upvote"
    assert alias["new_importance"] == pytest.approx(0.575 * 0.85 * 1.15)
    assert client.get_memory(agent_id, memory["id"])["importance"] == pytest.approx(
        alias["new_importance"]
    )


def test_upvote_caps_at_one_and_flag_keeps_importance(client: Any, agent_id: str) -> None:
    memory = client.store_memory(agent_id, FACT, importance=0.95)
    assert client.feedback_memory(memory["id"], agent_id, "upvote").new_importance == 1.0
    flagged = client.feedback_memory(memory["id"], agent_id, "flag")
    assert flagged.signal is FeedbackSignal.FLAG
    assert flagged.new_importance == 1.0


def test_history_is_ordered_capped_and_feeds_tif(client: Any, http: Any, agent_id: str) -> None:
    memory = client.store_memory(agent_id, FACT, importance=0.5)
    for signal in ("upvote", "upvote", "upvote"):
        client.feedback_memory(memory["id"], agent_id, signal)
    history = client.get_memory_feedback_history(memory["id"], agent_id)
    assert history.memory_id == memory["id"]
    assert [e.signal for e in history.entries] == [FeedbackSignal.UPVOTE] * 3
    assert history.entries[0].old_importance == 0.5
    assert history.entries[1].old_importance == history.entries[0].new_importance
    assert [e.timestamp for e in history.entries] == sorted(e.timestamp for e in history.entries)
    tif = client.evaluate_tif(memory["id"], agent_id)
    assert tif.feedback_count == 3 and tif.classification == "confident_reuse"
    # The reliability the SDK can read from metadata agrees with the history.
    reliability = client.get_memory(agent_id, memory["id"])["metadata"]["reliability"]
    assert reliability["truth"] == pytest.approx(tif.truth)
    for _ in range(100):
        answer = http.post(
            f"/v1/memories/{memory['id']}/feedback", json={"agent_id": agent_id, "signal": "flag"}
        )
        assert answer.status_code == 200
    entries = client.get_memory_feedback_history(memory["id"], agent_id).entries
    assert len(entries) == 100
    assert entries[0].signal is FeedbackSignal.FLAG  # the three upvotes were the oldest
    summary = client.get_agent_feedback_summary(agent_id)
    assert (summary.upvotes, summary.flags, summary.total_feedback) == (3, 100, 103)
    assert client.evaluate_tif(memory["id"], agent_id).classification == "ask_clarification"


def test_validation(http: Any, client: Any, agent_id: str) -> None:
    memory = client.store_memory(agent_id, FACT)
    no_agent = http.get(f"/v1/memories/{memory['id']}/feedback")
    assert no_agent.status_code == 400
    assert no_agent.json()["code"] == "INVALID_REQUEST"
    bad = http.post(
        f"/v1/memories/{memory['id']}/feedback", json={"agent_id": agent_id, "signal": "meh"}
    )
    assert bad.status_code == 400 and "signal" in bad.json()["error"]
    with pytest.raises(NotFoundError):
        client.feedback_memory("mem_does_not_exist", agent_id, "upvote")
    with pytest.raises(NotFoundError):
        client.feedback_memory(memory["id"], agent_id + "-other", "upvote")
    with pytest.raises(ValidationError):
        client.patch_memory_importance(memory["id"], agent_id, 1.5)


def test_patch_importance_answers_the_flat_memory(client: Any, agent_id: str) -> None:
    memory = client.store_memory(agent_id, FACT, importance=0.5)
    patched = client.patch_memory_importance(memory["id"], agent_id, 0.9)
    assert patched.id == memory["id"] and patched.content == FACT
    assert patched.importance == 0.9
    assert client.get_memory(agent_id, memory["id"])["importance"] == 0.9


def test_summary_and_health(client: Any, agent_id: str) -> None:
    empty = client.get_feedback_health(agent_id)
    assert (empty.memory_count, empty.health_score) == (0, 0.0)
    a = client.store_memory(agent_id, FACT, importance=0.2)
    client.store_memory(agent_id, "Hiro plays the cello", importance=0.6)
    client.feedback_memory(a["id"], agent_id, "downvote")
    client.feedback_memory(a["id"], agent_id, "flag")
    summary = client.get_agent_feedback_summary(agent_id)
    assert summary.agent_id == agent_id
    assert (summary.upvotes, summary.downvotes, summary.flags) == (0, 1, 1)
    assert summary.total_feedback == 2
    health = client.get_feedback_health(agent_id)
    assert health.memory_count == 2
    assert health.health_score == pytest.approx((0.2 * 0.85 + 0.6) / 2)
    assert health.avg_importance == health.health_score == pytest.approx(summary.health_score)


def test_feedback_changes_ranking(client: Any, agent_id: str) -> None:
    first, second = _copies(client, agent_id)
    client.feedback_memory(first, agent_id, "downvote")
    assert _order(client, agent_id) == [second, first]
    for _ in range(2):
        client.feedback_memory(first, agent_id, "upvote")
    assert _order(client, agent_id) == [first, second]


@pytest.fixture
def clocked(tmp_path: Path, embedder: EmbeddingProvider) -> Iterator[tuple[Any, FakeClock]]:
    clock = FakeClock()
    with clock_server(tmp_path, embedder, clock) as (_server, sdk):
        yield sdk, clock


def test_flag_makes_a_memory_decay_faster(clocked: tuple[Any, FakeClock]) -> None:
    client, clock = clocked
    agent = "flag-agent"
    first, second = _copies(client, agent)
    client.feedback_memory(first, agent, "flag")
    assert client.get_memory(agent, first)["importance"] == 0.5  # no immediate change
    clock.advance(3 * DAY)
    assert _order(client, agent) == [second, first]


def test_feedback_emits_importance_events(
    server: RunningServer, client: Any, agent_id: str
) -> None:
    memory = client.store_memory(agent_id, FACT)
    subscription = server.engine.events.subscribe(lambda e: e.memory_id == memory["id"])
    try:
        client.feedback_memory(memory["id"], agent_id, "upvote")
        client.patch_memory_importance(memory["id"], agent_id, 0.3)
        events = [subscription.queue.get(timeout=5) for _ in range(2)]
    finally:
        subscription.close()
    assert [e.event_type for e in events] == ["importance_updated", "importance_updated"]
    assert [e.importance for e in events] == [pytest.approx(0.575), 0.3]
