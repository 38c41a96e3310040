"""Decay: ranking by decayed importance, the decay cycle, its config and stats (§3.13, §4.3).

Every test runs its own server on a ``FakeClock`` so that "60 days later" is one call.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dakera.exceptions import NotFoundError
from hypothesis import given
from hypothesis import strategies as st

from dakera_server.engine.memory.decay import STRATEGIES, DecayPolicy, curve, decayed_importance
from dakera_server.engine.memory.models import Memory
from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.api.lifecycle_support import DAY, FakeClock, clock_server
from tests.conftest import RunningServer

AGENT = "decay-agent"
FACT = "The launch code for project Falcon is 4412"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def running(
    tmp_path: Path, embedder: EmbeddingProvider, clock: FakeClock
) -> Iterator[tuple[RunningServer, Any]]:
    with clock_server(tmp_path, embedder, clock) as pair:
        yield pair


DISTRACTORS = (
    "Grace bakes sourdough bread every Sunday morning",
    "The quarterly budget review moved to Thursday",
    "Hiro is learning to play the cello",
)


def _ranked(client: Any, query: str, **kwargs: Any) -> list[Any]:
    """Ranked ``FACT`` copies, best first (distractors filtered out).

    Vector routing only: copies of one text get identical cosines, so relevance is tied and
    only decay can order them (the BM25 index can score identical documents differently
    when they sit in different segments).
    """
    found = client.recall(AGENT, query, top_k=10, routing="vector", **kwargs).memories
    return [m for m in found if m.content == FACT]


@pytest.fixture
def distractors(running: tuple[RunningServer, Any]) -> None:
    """Unrelated memories: min-max fusion then spreads scores over a real range, so two copies
    of the same text are tied on relevance instead of split 0/1 by float noise."""
    for text in DISTRACTORS:
        running[1].store_memory(AGENT, text, importance=0.5)


@pytest.mark.usefixtures("distractors")
def test_old_unused_memory_ranks_below_an_equally_relevant_fresh_one(
    running: tuple[RunningServer, Any], clock: FakeClock
) -> None:
    _, client = running
    old = client.store_memory(AGENT, FACT, importance=0.9)
    clock.advance(60 * DAY)
    fresh = client.store_memory(AGENT, FACT, importance=0.5)
    ranked = _ranked(client, "launch code of project Falcon")
    assert [m.id for m in ranked] == [fresh["id"], old["id"]]
    assert ranked[0].score > ranked[1].score
    # Control: with a flat curve nothing decays, and the more important old memory wins —
    # so the order above is the decay's doing, not recency's.
    client.decay_update_config(strategy="flat")
    assert _ranked(client, "launch code of project Falcon")[0].id == old["id"]


@pytest.mark.usefixtures("distractors")
def test_access_reinforces(running: tuple[RunningServer, Any], clock: FakeClock) -> None:
    _, client = running
    first = client.store_memory(AGENT, FACT, tags=["first"])
    second = client.store_memory(AGENT, FACT, tags=["second"])
    clock.advance(10 * DAY)
    # Recall only the second one: the hit restarts its decay.
    hit = client.recall(AGENT, "Falcon launch code", top_k=1, tags=["second"]).memories
    assert [m.id for m in hit] == [second["id"]]
    clock.advance(10 * DAY)
    ranked = _ranked(client, "Falcon launch code")
    assert [m.id for m in ranked] == [second["id"], first["id"]]
    assert ranked[0].score > ranked[1].score


def test_decay_cycle_persists_the_curve_and_deletes_below_the_floor(
    running: tuple[RunningServer, Any], clock: FakeClock
) -> None:
    _, client = running
    assert client.decay_stats()["cycles_run"] == 0
    assert "last_cycle" not in client.decay_stats()
    client.decay_update_config(strategy="power_law", half_life_hours=168, min_importance=0.05)
    kept = client.store_memory(AGENT, "Anna moved to Lisbon", importance=0.8)
    faint = client.store_memory(AGENT, "The printer was out of paper", importance=0.06)
    clock.advance(7 * DAY)  # one half-life
    client.autopilot_trigger("decay")
    stats = client.decay_stats()
    assert stats["cycles_run"] == 1
    assert stats["last_cycle"] == {
        "namespaces_processed": 1,
        "memories_processed": 2,
        "memories_decayed": 1,
        "memories_deleted": 1,
    }
    assert stats["total_deleted"] == 1 and stats["last_run_at"] == int(clock())
    assert client.get_memory(AGENT, kept["id"])["importance"] == pytest.approx(0.4, abs=1e-3)
    with pytest.raises(NotFoundError):
        client.get_memory(AGENT, faint["id"])
    clock.advance(7 * DAY)  # two half-lives: power law gives 0.8 / 3, not 0.4 / 2
    client.autopilot_trigger("decay")
    assert client.get_memory(AGENT, kept["id"])["importance"] == pytest.approx(0.8 / 3, abs=1e-3)
    assert client.decay_stats()["total_decayed"] == 2


@pytest.mark.usefixtures("distractors")
def test_namespace_policy_overrides_the_global_curve_per_type(
    running: tuple[RunningServer, Any], clock: FakeClock
) -> None:
    server, client = running
    old = client.store_memory(AGENT, FACT, importance=0.9, memory_type="procedural")
    clock.advance(60 * DAY)
    fresh = client.store_memory(AGENT, FACT, importance=0.5, memory_type="procedural")
    assert _ranked(client, "Falcon launch code")[0].id == fresh["id"]
    with server.http() as http:
        answer = http.put(
            f"/v1/namespaces/_dakera_agent_{AGENT}/memory_policy",
            json={"procedural_decay": "flat"},
        )
    assert answer.status_code == 200, answer.text
    assert _ranked(client, "Falcon launch code")[0].id == old["id"]


@pytest.mark.usefixtures("distractors")
def test_per_type_half_life_in_the_global_config(
    running: tuple[RunningServer, Any], clock: FakeClock
) -> None:
    server, client = running
    updated = client.decay_update_config(half_life_hours=24)
    assert updated["success"] is True and updated["config"]["half_life_hours"] == 24
    with server.http() as http:  # an extension field the SDK does not send
        answer = http.put(
            "/v1/admin/decay/config", json={"type_half_life_hours": {"semantic": 24 * 365}}
        )
    assert answer.status_code == 200, answer.text
    fact = client.store_memory(AGENT, FACT, memory_type="semantic")
    event = client.store_memory(AGENT, FACT, memory_type="episodic")
    clock.advance(5 * DAY)
    assert [m.id for m in _ranked(client, "Falcon launch code")] == [fact["id"], event["id"]]


def test_decay_config_round_trip_and_validation(running: tuple[RunningServer, Any]) -> None:
    server, client = running
    assert client.decay_config() == {
        "strategy": "exponential",
        "half_life_hours": 168.0,
        "min_importance": 0.05,
        "type_half_life_hours": {},
    }
    client.decay_update_config(strategy="step", min_importance=0.1)
    assert client.decay_config()["strategy"] == "step"
    assert client.decay_config()["min_importance"] == 0.1
    with server.http() as http:
        for body in ({"strategy": "cubic"}, {"half_life_hours": 0}, {"min_importance": 2}):
            answer = http.put("/v1/admin/decay/config", json=body)
            assert answer.status_code == 400, body
            assert answer.json()["code"] == "INVALID_REQUEST"
        unknown = http.put("/v1/admin/decay/config", json={"half_life": 3})
        assert unknown.status_code == 422
        assert unknown.json()["code"] == "UNPROCESSABLE_CONTENT"
        # Admin plane is served under /admin too.
        assert http.get("/admin/decay/config").json()["strategy"] == "step"
    assert client.decay_config()["strategy"] == "step"


def test_decay_config_survives_a_restart(
    tmp_path: Path, embedder: EmbeddingProvider, clock: FakeClock
) -> None:
    with clock_server(tmp_path, embedder, clock) as (_, client):
        client.decay_update_config(strategy="linear", half_life_hours=12)
    with clock_server(tmp_path, embedder, clock) as (_, client):
        assert client.decay_config()["strategy"] == "linear"
        assert client.decay_config()["half_life_hours"] == 12


# ------------------------------------------------------------ the pure function
@given(
    strategy=st.sampled_from(STRATEGIES),
    x=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    dx=st.floats(min_value=0, max_value=1e3, allow_nan=False),
)
def test_every_curve_starts_at_one_and_never_rises(strategy: str, x: float, dx: float) -> None:
    assert curve(strategy, 0.0) == 1.0
    assert 0.0 <= curve(strategy, x + dx) <= curve(strategy, x) <= 1.0
    if strategy != "flat":
        assert curve(strategy, 1.0) == pytest.approx(0.5)


@given(
    importance=st.floats(min_value=0, max_value=1),
    age=st.floats(min_value=0, max_value=1e9, allow_nan=False),
    accesses=st.integers(min_value=0, max_value=10_000),
    strategy=st.sampled_from(STRATEGIES),
)
def test_decayed_importance_is_bounded_and_use_slows_it(
    importance: float, age: float, accesses: int, strategy: str
) -> None:
    policy = DecayPolicy(strategy, 168.0)
    memory = Memory(id="m", agent_id="a", content="c", importance=importance, created_at=0)
    used = Memory(**{**memory.__dict__, "access_count": accesses})
    value = decayed_importance(memory, age, policy)
    assert 0.0 <= value <= importance
    assert decayed_importance(used, age, policy) >= value
