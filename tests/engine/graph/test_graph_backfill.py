"""The start-up entity backfill: memories written without derived rows get their entities after
the server is ready, with the same result as an inline start-up, and without losing an edge.

Memories are written through the real SQLite store (as an import would), the engine is the real
one; ``INLINE_EXTRACTIONS`` is lowered so a few thousand memories take the background path.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import orjson
import pytest

from dakera_server.config import Settings
from dakera_server.engine.core import Engine
from dakera_server.engine.graph import knowledge_graph as graph_module
from dakera_server.engine.graph import load as graph_load
from dakera_server.engine.graph.model import SYSTEM, AgentGraph
from dakera_server.engine.memory.models import Memory
from dakera_server.engine.memory.writes import NewMemory
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.storage.base import Op
from dakera_server.storage.sqlite import SqliteStore
from tests.conftest import ROOT_KEY

AGENT = "imported"
FRIENDS = ("Anna", "Omar", "Grace", "Hiro", "Ines")
PLACES = ("Lisbon", "Oslo", "Kyoto", "Porto")
N = 3000  # ~0.3 s of extraction: the backfill is still running when load() returns


def write_without_rows(data_dir: Path, n: int) -> list[str]:
    """``n`` memories of ``AGENT`` through the storage layer (no graph rows), oldest first."""
    store = SqliteStore(data_dir / "dakera.db")
    rng = np.random.default_rng(4)
    ids = []
    ops = []
    for i in range(n):
        vector = rng.standard_normal(384).astype(np.float32)
        vector /= np.linalg.norm(vector)
        memory = Memory(
            id=f"mem_{i:06d}",
            agent_id=AGENT,
            content=f"Caroline met {FRIENDS[i % 5]} in {PLACES[i % 4]} (note {i}).",
            created_at=1_700_000_000 + i,
        )
        ids.append(memory.id)
        ops.append(
            Op.put("memories", memory.id, memory.to_payload(), group=AGENT, vector=vector.tobytes())
        )
    store.write(ops)
    store.close()
    return ids


def open_engine(data_dir: Path, embedder: EmbeddingProvider) -> Engine:
    engine = Engine(Settings(data_dir=data_dir, root_api_key=ROOT_KEY), embedder=embedder)
    engine.load()
    return engine


def loaded_without_backfill(data_dir: Path, embedder: EmbeddingProvider) -> Engine:
    """``Engine.load``'s steps up to the graph: the backfill is created, not started."""
    engine = Engine(Settings(data_dir=data_dir, root_api_key=ROOT_KEY), embedder=embedder)
    engine.memories.load()
    engine.entities.load()
    engine.graph.load()
    return engine


def agent_graph(engine: Engine) -> AgentGraph:
    graph = engine.graph.graph(AGENT)
    assert graph is not None
    return graph


def stored_rows(data_dir: Path) -> dict[str, bytes]:
    store = SqliteStore(data_dir / "dakera.db")
    try:
        return {row.key: row.payload for row in store.iter_rows("edges", AGENT)}
    finally:
        store.close()


@pytest.fixture
def small_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph_load, "INLINE_EXTRACTIONS", 10)


@pytest.mark.usefixtures("small_inline")
def test_backfill_ends_where_an_inline_start_up_ends(
    tmp_path: Path, embedder: EmbeddingProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_without_rows(tmp_path / "background", N)
    shutil.copytree(tmp_path / "background", tmp_path / "inline")

    engine = open_engine(tmp_path / "background", embedder)
    try:
        backfill = engine.graph.backfill
        assert engine.ready and backfill is not None and backfill.total == N
        assert backfill.wait_all(timeout=120)
        assert backfill.extracted == N
        background = agent_graph(engine)
        entities, mentions = (
            dict(background.entities),
            {k: list(v) for k, v in background.mentions.items()},
        )
    finally:
        engine.close()

    monkeypatch.setattr(graph_load, "INLINE_EXTRACTIONS", 10 * N)
    # Entities only, as the background path gives: these memories stand for an import, not
    # for a crash window (whose automatic edges start-up derives again, test_graph_load.py).
    monkeypatch.setattr(graph_module, "REDERIVE_AT_LOAD", 0)
    inline_engine = open_engine(tmp_path / "inline", embedder)
    try:
        assert inline_engine.graph.backfill is None
        inline = agent_graph(inline_engine)
        assert entities == inline.entities
        # Mentions in the same (chronological) order: what shares_entity links rely on.
        assert mentions == {k: list(v) for k, v in inline.mentions.items()}
    finally:
        inline_engine.close()
    assert stored_rows(tmp_path / "background") == stored_rows(tmp_path / "inline")


@pytest.mark.usefixtures("small_inline")
def test_a_store_during_the_backfill_links_to_memories_not_extracted_yet(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    ids = write_without_rows(tmp_path, N)
    engine = loaded_without_backfill(tmp_path, embedder)  # a store arrives first
    try:
        backfill = engine.graph.backfill
        assert backfill is not None and backfill.is_pending(AGENT, ids[-1])
        newest_entities = engine.graph.entities_of(SYSTEM, ids[-1])[1]
        assert [e.key for e in newest_entities] == [
            "person:caroline",
            f"person:{FRIENDS[(N - 1) % 5].lower()}",
            f"location:{PLACES[(N - 1) % 4].lower()}",
        ]
        stored = engine.memories.store(
            SYSTEM, [NewMemory(agent_id=AGENT, content="Caroline went sailing with friends.")]
        ).memories[0]
        graph = agent_graph(engine)
        linked = {
            e.to_id
            for e in graph.adjacency[stored.id].values()
            if e.from_id == stored.id and e.edge_type == "shares_entity"
        }
        # The three latest mentions of Caroline: the three newest imported memories.
        assert linked == set(ids[-3:])
        assert backfill.wait_all(timeout=0) and backfill.extracted == N  # the store ran it
    finally:
        engine.close()
    row = stored_rows(tmp_path)[stored.id]
    assert {edge[0] for edge in orjson.loads(row)["edges"]} >= set(ids[-3:])


@pytest.mark.usefixtures("small_inline")
def test_forgotten_during_the_backfill_gets_no_row(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    ids = write_without_rows(tmp_path, N)
    engine = open_engine(tmp_path, embedder)
    try:
        engine.memories.forget(SYSTEM, AGENT, [ids[-1], ids[0]])
        backfill = engine.graph.backfill
        assert backfill is not None and backfill.wait_all(timeout=120)
        graph = agent_graph(engine)
        assert ids[-1] not in graph.entities and ids[0] not in graph.entities
        assert ids[-1] not in graph.mentions["person:caroline"]
        assert len(graph.entities) == N - 2
    finally:
        engine.close()
    rows = stored_rows(tmp_path)
    assert ids[-1] not in rows and ids[0] not in rows and len(rows) == N - 2


@pytest.mark.usefixtures("small_inline")
def test_a_shutdown_during_the_backfill_leaves_the_rest_to_the_next_start(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    write_without_rows(tmp_path, N)
    engine = open_engine(tmp_path, embedder)
    engine.close()  # stops the backfill wherever it was
    done_first = len(stored_rows(tmp_path))
    assert done_first < N

    engine = open_engine(tmp_path, embedder)
    try:
        backfill = engine.graph.backfill
        assert backfill is not None and backfill.total == N - done_first
        assert backfill.wait_all(timeout=120)
        assert len(agent_graph(engine).entities) == N
    finally:
        engine.close()
    assert len(stored_rows(tmp_path)) == N


@pytest.mark.usefixtures("small_inline")
def test_a_link_during_the_backfill_saves_the_pending_entities_too(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    ids = write_without_rows(tmp_path, N)
    engine = loaded_without_backfill(tmp_path, embedder)
    try:
        expected = engine.graph.entities_of(SYSTEM, ids[5])[1]
        assert expected  # extracted on demand while pending
        engine.graph.link(SYSTEM, ids[5], ids[6], AGENT, "same trip")
    finally:
        engine.close()  # stops the backfill before it ever ran
    rows = stored_rows(tmp_path)
    assert set(rows) == {ids[5]}  # the link's row, nothing else
    engine = open_engine(tmp_path, embedder)
    try:
        # The link's row carried the entities: the next start did not take it for "none".
        assert engine.graph.entities_of(SYSTEM, ids[5])[1] == expected
        graph = agent_graph(engine)
        assert any(e.to_id == ids[6] for e in graph.adjacency[ids[5]].values())
        backfill = engine.graph.backfill
        assert backfill is not None and backfill.total == N - 1
    finally:
        engine.close()
