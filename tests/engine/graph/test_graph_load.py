"""Start-up repairs what a crash between a memory's commit and its graph rows left behind.

The memory and its derived graph rows are two writes; these tests cut the second one short by
editing the real SQLite store between two real engine lifetimes.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from dakera_server.config import Settings
from dakera_server.engine.core import Engine
from dakera_server.engine.graph.model import SYSTEM, Edge
from dakera_server.engine.memory.writes import NewMemory
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.storage.base import Op
from dakera_server.storage.sqlite import SqliteStore
from tests.conftest import ROOT_KEY

AGENT = "repair"


def open_engine(data_dir: Path, embedder: EmbeddingProvider) -> Engine:
    engine = Engine(Settings(data_dir=data_dir, root_api_key=ROOT_KEY), embedder=embedder)
    engine.load()
    return engine


def test_dangling_edges_and_missing_rows_are_repaired(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    engine = open_engine(tmp_path, embedder)
    texts = [
        "Caroline moved to Lisbon in 2019.",
        "Caroline adopted a cat called Miso.",
        "Caroline visited Lisbon again last spring.",
    ]
    a, b, c = (
        m.id
        for m in engine.memories.store(
            SYSTEM, [NewMemory(agent_id=AGENT, content=t) for t in texts]
        ).memories
    )
    engine.graph.add_edges(
        AGENT, [Edge(a, b, "linked_by", 1.0, 0), Edge(c, b, "linked_by", 1.0, 0)]
    )
    entities_of_c = engine.graph.entities_of(SYSTEM, c)[1]
    assert entities_of_c
    engine.close()

    # A crash: b's deletion committed but its graph rows were not rewritten; c's row was lost.
    store = SqliteStore(tmp_path / "dakera.db")
    store.write([Op.delete("memories", b, group=AGENT), Op.delete("edges", c, group=AGENT)])
    store.close()

    engine = open_engine(tmp_path, embedder)
    try:
        graph = engine.graph.graph(AGENT)
        assert graph is not None
        assert all(b not in (e.from_id, e.to_id) for e in graph.edges.values())
        assert b not in graph.adjacency
        assert engine.graph.entities_of(SYSTEM, c)[1] == entities_of_c  # extracted again
        assert "person:caroline" in graph.mentions
        assert set(graph.mentions["person:caroline"]) == {a, c}
    finally:
        engine.close()
    store = SqliteStore(tmp_path / "dakera.db")
    try:
        row = store.get_row("edges", a, group=AGENT)
        assert row is not None
        assert all(edge[0] != b for edge in orjson.loads(row.payload)["edges"])
        assert store.get_row("edges", c, group=AGENT) is not None  # rewritten at start-up
        assert store.get_row("edges", b, group=AGENT) is None
    finally:
        store.close()


def test_a_memory_whose_row_a_crash_cut_off_gets_its_automatic_edges_back(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    engine = open_engine(tmp_path, embedder)
    texts = [
        "Caroline moved to Lisbon in 2019.",
        "Melanie painted a sunrise over the lake.",
        "Caroline still loves living in Lisbon.",
    ]
    stored = engine.memories.store(SYSTEM, [NewMemory(agent_id=AGENT, content=t) for t in texts])
    a, _, c = (m.id for m in stored.memories)
    graph = engine.graph.graph(AGENT)
    assert graph is not None
    derived = {(e.to_id, e.edge_type) for e in graph.edges.values() if e.from_id == c}
    assert (a, "shares_entity") in derived
    engine.close()

    # kill -9 between the memory's commit and its graph row: the row never reached the store.
    store = SqliteStore(tmp_path / "dakera.db")
    store.write([Op.delete("edges", c, group=AGENT)])
    store.close()

    engine = open_engine(tmp_path, embedder)
    try:
        graph = engine.graph.graph(AGENT)
        assert graph is not None
        again = {(e.to_id, e.edge_type) for e in graph.edges.values() if e.from_id == c}
        assert again == derived
    finally:
        engine.close()
    store = SqliteStore(tmp_path / "dakera.db")
    try:
        assert store.get_row("edges", c, group=AGENT) is not None
    finally:
        store.close()
