"""Insertion order: every stored memory gets the agent's next insertion number, durably, so the
turns of a chat log that share one event time keep their order across restarts."""

from __future__ import annotations

from pathlib import Path

from dakera_server.engine.access import Caller, Scope
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.writes import NewMemory
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.storage.sqlite import SqliteStore

ROOT = Caller("root", "root", Scope.SUPER_ADMIN)
DATE = 1_686_700_800


def open_engine(path: Path, embedder: EmbeddingProvider) -> tuple[SqliteStore, MemoryEngine]:
    store = SqliteStore(path)
    engine = MemoryEngine(store, embedder, max_content_bytes=100_000, exact_threshold=10_000)
    engine.load()
    return store, engine


def turn(text: str, agent: str = "chat") -> NewMemory:
    return NewMemory(agent_id=agent, content=text, event_time=DATE)


def test_insertion_numbers_continue_after_a_restart(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    store, engine = open_engine(tmp_path / "db.sqlite", embedder)
    first = engine.store(ROOT, [turn("A: hello"), turn("B: hi there")]).memories
    other = engine.store(ROOT, [turn("X: another agent", agent="other")]).memories
    replaced = engine.store(
        ROOT, [NewMemory(agent_id="chat", content="A: hello!", id=first[0].id, event_time=DATE)]
    )
    assert [m.seq for m in first] == [1, 2]
    assert other[0].seq == 1  # numbered per agent
    assert replaced.memories[0].seq == 1  # re-storing an id keeps its place
    store.close()

    store, engine = open_engine(tmp_path / "db.sqlite", embedder)
    third = engine.store(ROOT, [turn("A: how are you?")]).memories[0]
    assert third.seq == 3
    agent = engine.agent(ROOT, "chat")
    assert agent is not None
    with agent.lock:
        assert agent.timeline.neighbours(first[1].id, lambda _id: True) == [[first[0].id, third.id]]
    store.close()
