"""TTL and retention (§4.4, §4.5, §7.3): expiry with a controllable clock, stats, sweeps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dakera.exceptions import NotFoundError

from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.api.lifecycle_support import DAY, HOUR, FakeClock, clock_server, wait_for
from tests.conftest import RunningServer

AGENT = "ttl-agent"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def running(
    tmp_path: Path, embedder: EmbeddingProvider, clock: FakeClock
) -> Iterator[tuple[RunningServer, Any]]:
    with clock_server(tmp_path, embedder, clock) as pair:
        yield pair


def _stored_rows(server: RunningServer, agent_id: str) -> int:
    """Memories of the agent on disk (not just hidden)."""
    return server.engine.store.count("memories", group=agent_id)


def test_expired_memories_are_never_returned_then_purged(
    running: tuple[RunningServer, Any], clock: FakeClock
) -> None:
    server, client = running
    brief = client.store_memory(AGENT, "The door code is 1234 today", ttl_seconds=3600)
    lasting = client.store_memory(AGENT, "The door code changes monthly")
    assert brief["expires_at"] == brief["created_at"] + 3600
    clock.advance(2 * HOUR)
    with pytest.raises(NotFoundError):
        client.get_memory(AGENT, brief["id"])
    recalled = client.recall(AGENT, "door code", top_k=5).memories
    assert [m.id for m in recalled] == [lasting["id"]]
    assert [m["id"] for m in client.agent_memories(AGENT)] == [lasting["id"]]
    assert _stored_rows(server, AGENT) == 2  # hidden, not yet purged
    stats = client.ttl_stats()
    assert stats.total_expired == 1 and stats.total_with_ttl == 0
    assert stats.namespaces[0].namespace == f"_dakera_agent_{AGENT}"
    cleaned = client.ttl_cleanup()
    assert cleaned.success is True and cleaned.vectors_removed == 1
    assert cleaned.namespaces_cleaned == [f"_dakera_agent_{AGENT}"]
    assert _stored_rows(server, AGENT) == 1
    assert client.ttl_stats().namespaces == []


def test_stats_count_what_expires_soon(running: tuple[RunningServer, Any]) -> None:
    _, client = running
    for ttl in (1800, 5 * 3600, 2 * 86400):
        client.store_memory(AGENT, f"note that lives {ttl} seconds", ttl_seconds=ttl)
    client.store_memory(AGENT, "a note without expiry")
    stats = client.ttl_stats()
    assert (stats.total_with_ttl, stats.total_expired) == (3, 0)
    (namespace,) = stats.namespaces
    assert namespace.vectors_with_ttl == 3
    assert namespace.expiring_within_hour == 1
    assert namespace.expiring_within_day == 2
    assert namespace.expired_pending_cleanup == 0


def test_expires_at_wins_and_cleanup_can_target_one_namespace(
    running: tuple[RunningServer, Any], clock: FakeClock
) -> None:
    server, client = running
    now = int(clock())
    client.store_memory("ttl-a", "first agent note", ttl_seconds=10, expires_at=now + 7200)
    client.store_memory("ttl-b", "second agent note", ttl_seconds=10)
    clock.advance(HOUR)
    assert client.ttl_stats().total_expired == 1  # expires_at (2 h) beat ttl_seconds (10 s)
    clock.advance(2 * HOUR)
    cleaned = client.ttl_cleanup(namespace="_dakera_agent_ttl-a")
    assert cleaned.vectors_removed == 1
    assert _stored_rows(server, "ttl-a") == 0 and _stored_rows(server, "ttl-b") == 1
    assert client.ttl_cleanup(namespace="no-such-namespace").vectors_removed == 0


def test_background_sweep_purges_on_its_interval(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    clock = FakeClock()
    with clock_server(tmp_path, embedder, clock, ttl_sweep_interval_secs=60) as (server, client):
        client.store_memory(AGENT, "short lived", ttl_seconds=30)
        clock.advance(120)
        wait_for(
            lambda: any(
                j["type"] == "ttl_sweep"
                and j["status"] == "completed"
                and j["result"]["memories_removed"] == 1
                for j in client.ops_list_jobs()
            ),
            what="the TTL sweep",
        )
        assert _stored_rows(server, AGENT) == 0


def test_namespace_policy_gives_default_ttl_and_spaced_repetition(
    running: tuple[RunningServer, Any], clock: FakeClock
) -> None:
    server, client = running
    policy = {
        "working_ttl_seconds": 600,
        "spaced_repetition_factor": 1.0,
        "spaced_repetition_base_interval_seconds": 3600,
    }
    with server.http() as http:
        answer = http.put(f"/v1/namespaces/_dakera_agent_{AGENT}/memory_policy", json=policy)
    assert answer.status_code == 200, answer.text
    scratch = client.store_memory(AGENT, "scratch: the build is red", memory_type="working")
    assert scratch["expires_at"] == scratch["created_at"] + 600
    client.recall(AGENT, "is the build red", top_k=1)  # one hit: expiry ≥ now + 1 h
    now = int(clock())
    assert client.get_memory(AGENT, scratch["id"])["expires_at"] == now + 3600
    client.recall(AGENT, "is the build red", top_k=1)  # second hit doubles the interval
    assert client.get_memory(AGENT, scratch["id"])["expires_at"] == now + 7200
    clock.advance(7200 + 1)
    with pytest.raises(NotFoundError):
        client.get_memory(AGENT, scratch["id"])
    # A namespace without a policy gets no default TTL.
    plain = client.store_memory("ttl-plain", "scratch elsewhere", memory_type="working")
    assert plain["expires_at"] is None


def test_trash_expires_with_the_sweep(running: tuple[RunningServer, Any], clock: FakeClock) -> None:
    server, client = running
    client.autopilot_update_config(trash_retention_hours=1)
    client.store_memory(AGENT, "The user's favourite colour is blue.")
    client.store_memory(AGENT, "The user's favourite colour is blue!")
    assert client.deduplicate(AGENT)["removed_count"] == 1
    (entry,) = client.list_deduplicated(AGENT).memories
    assert entry.restorable_until == entry.deleted_at + 3600
    clock.advance(2 * HOUR)
    assert client.list_deduplicated(AGENT).count == 0  # past its time: no longer listed
    client.ttl_cleanup()
    assert server.engine.store.count("trash") == 0
    with pytest.raises(NotFoundError):
        client.restore_deduplicated(AGENT, entry.id)


def test_expiry_is_measured_from_ingest_not_event_time(
    running: tuple[RunningServer, Any], clock: FakeClock
) -> None:
    _, client = running
    old_event = client.store_memory(
        AGENT, "The treaty was signed", event_time=1_000_000_000, ttl_seconds=int(DAY)
    )
    assert old_event["expires_at"] == old_event["created_at"] + DAY
    assert client.get_memory(AGENT, old_event["id"])["id"] == old_event["id"]
