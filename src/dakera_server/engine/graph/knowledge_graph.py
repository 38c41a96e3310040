"""The knowledge graph over memories: typed edges per agent, persisted, held in memory.

Edge kinds (dakera-api.md §3.12):

* ``linked_by`` — an explicit link (``POST /v1/memories/{id}/links``), weight 1.0, optional label;
* ``related_to`` — added when a memory is stored, towards the nearest existing memories of the
  same agent whose cosine similarity reaches ``DAKERA_GRAPH_SIMILARITY_THRESHOLD`` (0.85);
  ``similar_to`` is accepted as an alias wherever edge types are filtered;
* ``shares_entity`` — added when a memory is stored, towards the latest memories of the agent
  that mention the same entity (person, place, organisation, dated day, product, URL, e-mail);
  the label names the entity, the weight is the extractor's score;
* ``precedes`` / ``supersedes`` — recorded for other engine parts (session summaries,
  consolidation) through ``add_edges``.

Entities are graph nodes too: every memory's entities are kept here (``entities_of``) and an
index entity → memories connects the memories that mention it. Each new mention links to at
most ``ENTITY_LINKS`` earlier ones, so a name that occurs in every memory of an agent costs a
few edges per memory, not a quadratic number.

Persistence: the store's ``edges`` table holds one row per memory (group = agent id, key =
memory id) with the memory's entities and the edges that start at it. One row per memory rather
than one per edge: start-up reads a quarter of the rows for three edges per memory, and the
cost per row, not per edge, dominated (measured in ``bench/graph.py``). A change rewrites the
rows of the memories whose outgoing edges or entities changed, computed and written under the
agent's graph lock so that an older state never overwrites a newer one. Derived data is written
right after the memory's own commit; at start-up (``load.py``), edges towards missing
memories are dropped and memories without a row get their entities again, so a crash between
the two writes loses at most the derived edges of the memories in flight.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from dakera_server.engine.access import Caller, agent_namespace
from dakera_server.engine.entities.extractor import Entity
from dakera_server.engine.entities.service import EntityService
from dakera_server.engine.graph.load import EntityBackfill, load_graph
from dakera_server.engine.graph.model import (
    EDGE_TYPES,
    SYSTEM,
    AgentGraph,
    Edge,
    row_payload,
)
from dakera_server.engine.memory.agents import AgentMemories
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.models import Memory
from dakera_server.errors import InvalidInput, MemoryNotFound, StorageError, Unavailable
from dakera_server.storage.base import Op

__all__ = ["KnowledgeGraph"]

logger = logging.getLogger("dakera_server.graph")

SIMILAR_PER_MEMORY = 5
# Memories found without a graph row at start-up get their automatic edges derived then, up to
# this many (~0.4 ms each: a crash window is a few batches). More than that is an import through
# the storage layer, which keeps only its entities.
REDERIVE_AT_LOAD = 5_000
ENTITY_LINKS = 3
MAX_LABEL_CHARS = 256
WRITE_BATCH = 2000


class KnowledgeGraph:
    """All agents' graphs: the store hooks that grow them, links, and persistence."""

    def __init__(
        self,
        memories: MemoryEngine,
        entities: EntityService,
        *,
        similarity_threshold: float,
    ) -> None:
        self.memories = memories
        self.entities = entities
        self.similarity_threshold = similarity_threshold
        self._graphs: dict[str, AgentGraph] = {}
        self._lock = threading.Lock()
        self._backfill: EntityBackfill | None = None

    def graph(self, agent_id: str, *, create: bool = False) -> AgentGraph | None:
        """The agent's graph (created empty when ``create``)."""
        with self._lock:
            graph = self._graphs.get(agent_id)
            if graph is None and create:
                graph = self._graphs[agent_id] = AgentGraph(agent_id)
            return graph

    def persist(
        self, graph: AgentGraph, dirty: Iterable[str], live: Collection[str], *, strict: bool
    ) -> None:
        """Rewrite (or delete, for memories no longer ``live``) the rows of ``dirty`` memories.

        The caller holds ``graph.lock``. With ``strict`` a storage failure is raised (an explicit
        link must not be acknowledged unsaved); otherwise it is logged: derived data comes back
        at the next start-up, and the memory itself is already stored.
        """
        group = graph.agent_id
        dirty = list(dict.fromkeys(dirty))
        if self._backfill is not None:
            self._backfill.fill_in(graph, (m for m in dirty if m in live))
        ops = [
            Op.put("edges", m, row_payload(graph, m), group=group)
            if m in live
            else Op.delete("edges", m, group=group)
            for m in dirty
        ]
        for start in range(0, len(ops), WRITE_BATCH):
            try:
                self.memories.storage.write(ops[start : start + WRITE_BATCH])
            except (StorageError, Unavailable) as exc:
                if strict:
                    raise
                logger.warning("could not persist %d graph rows: %s", len(ops), exc.message)

    def graphs(self) -> list[AgentGraph]:
        """Every agent's graph (a snapshot of the list)."""
        with self._lock:
            return list(self._graphs.values())

    # ------------------------------------------------------------------ start-up
    def reset(self) -> None:
        """Stop a running backfill and forget every agent graph (before ``load`` after a
        restore replaced the store's contents)."""
        self.close()
        with self._lock:
            self._graphs = {}
        self._backfill = None

    def load(self) -> tuple[int, int]:
        """Read every agent's rows, drop edges towards missing memories, and extract the
        entities of memories without a row: inline when few, else in the background once
        loaded (``load.py``). Returns (edges, memories whose entities were extracted
        now, inline)."""
        edges, extracted, backfill = load_graph(self)
        if backfill is not None:
            logger.info("extracting the entities of %d memories in the background", backfill.total)
            self._backfill = backfill
        if 0 < len(extracted) <= REDERIVE_AT_LOAD:
            edges += self._rederive(extracted)
        return edges, len(extracted)

    def _rederive(self, repaired: Sequence[Memory]) -> int:
        """The automatic edges of memories that had no graph row at start-up: the ones a crash
        cut off between their commit and their row (a store derives them right after its own
        commit). Derived as a store would, against the memories there are now. Returns how many
        edges the graph gained."""
        before = sum(len(g.edges) for g in self.graphs())
        by_agent: dict[str, list[Memory]] = {}
        for memory in repaired:
            by_agent.setdefault(memory.agent_id, []).append(memory)
        for agent_id, group in by_agent.items():
            agent = self.memories.agent(SYSTEM, agent_id)
            if agent is None:
                continue
            pairs = [(m, agent.vectors.get_vector(m.id)) for m in group]
            found = [(m, v) for m, v in pairs if v is not None]
            if found:
                self.memories_indexed([m for m, _ in found], np.stack([v for _, v in found]))
        return sum(len(g.edges) for g in self.graphs()) - before

    def start_backfill(self) -> None:
        """Start the entity backfill ``load`` left, if any (the engine does, once ready; a hook
        that has to wait for it starts it too, so it can never wait for nothing)."""
        if self._backfill is not None:
            self._backfill.start()

    @property
    def backfill(self) -> EntityBackfill | None:
        """The start-up entity backfill, if one was needed (done or not)."""
        return self._backfill

    def close(self) -> None:
        """Stop a running backfill (shutdown); what it did not reach is extracted next start."""
        if self._backfill is not None:
            self._backfill.stop()

    # ------------------------------------------------------------------ hooks
    def memories_indexed(
        self, memories: Sequence[Memory], vectors: npt.NDArray[np.float32]
    ) -> None:
        """After a store (or a content update) is committed and indexed: derive entities,
        ``related_to`` and ``shares_entity`` edges for each memory, replacing old derived ones."""
        by_agent: dict[str, list[int]] = {}
        for index, memory in enumerate(memories):
            by_agent.setdefault(memory.agent_id, []).append(index)
        for agent_id, indexes in by_agent.items():
            if self._backfill is not None:
                # Its shares_entity links may go to memories whose entities are being extracted.
                self._backfill.wait(agent_id)
            agent = self.memories.agent(SYSTEM, agent_id)
            graph = self.graph(agent_id, create=True)
            if agent is None or graph is None:
                continue
            order = {memories[i].id: position for position, i in enumerate(indexes)}
            dirty: list[str] = []
            for position, i in enumerate(indexes):
                dirty += self._derive(agent, graph, memories[i], vectors[i], order, position)
            with graph.lock:
                self.persist(graph, dirty, agent.memories, strict=False)

    def _derive(
        self,
        agent: AgentMemories,
        graph: AgentGraph,
        memory: Memory,
        vector: npt.NDArray[np.float32],
        batch: dict[str, int],
        position: int,
    ) -> list[str]:
        """Derive one memory's entities and edges; returns the memories whose rows changed."""
        now = int(self.memories.clock())
        group = graph.agent_id

        # Within a batch, a pair is linked once, from the later memory to the earlier one. No
        # ``allow`` filter: a Python predicate per indexed id would make a 1,000-memory batch
        # into an agent of 10,000 cost 10 million calls; a few spare results do the job.
        spare = 1 + min(len(batch) - 1, SIMILAR_PER_MEMORY)
        hits = [
            (other, score)
            for other, score in agent.vectors.search(vector, SIMILAR_PER_MEMORY + spare)
            if other != memory.id and batch.get(other, -1) < position
        ][:SIMILAR_PER_MEMORY]
        new = [
            Edge(memory.id, other, "related_to", round(float(score), 4), now)
            for other, score in hits
            if score >= self.similarity_threshold
        ]
        entities = self.entities.for_memory(memory, agent_namespace(group))
        with graph.lock:
            dropped = graph.drop(memory.id, automatic_only=True)
            for entity in entities:
                if entity.key is None:
                    continue
                for other in graph.latest_mentions(entity.key, ENTITY_LINKS, memory.id):
                    edge = Edge(memory.id, other, "shares_entity", entity.score, now, entity.value)
                    if edge.key not in graph.edges and other in agent.memories:
                        graph.add(edge)
                        new.append(edge)
            for edge in new:
                graph.add(edge)
            graph.set_entities(memory.id, entities)
        return [memory.id, *(e.from_id for e in dropped)]

    def memories_forgotten(self, agent_id: str, removed: Sequence[Memory]) -> None:
        """After memories are deleted: their edges and entities go too."""
        graph = self.graph(agent_id)
        if graph is None:
            return
        agent = self.memories.agent(SYSTEM, agent_id)
        live = agent.memories if agent is not None else {}
        with graph.lock:
            dirty = []
            for memory in removed:
                dirty += [memory.id, *(e.from_id for e in graph.drop(memory.id))]
            self.persist(graph, dirty, live, strict=False)

    def reload_rows(self, agent_id: str, keys: list[str]) -> None:
        """Read these graph rows of ``agent_id`` again (another node wrote them): each row is
        one memory's entities and outgoing edges; an absent row drops them."""
        graph = self.graph(agent_id, create=True)
        assert graph is not None
        for key in keys:
            row = self.memories.storage.get_row("edges", key, agent_id)
            with graph.lock:
                for edge in [e for e in graph.adjacency.get(key, {}).values() if e.from_id == key]:
                    graph.remove(edge.key)
                for entity in graph.entities.pop(key, ()):
                    if entity.key is not None and entity.key in graph.mentions:
                        graph.mentions[entity.key].pop(key, None)
                        if not graph.mentions[entity.key]:
                            del graph.mentions[entity.key]
                if row is None:
                    continue
                data = orjson.loads(row.payload)
                graph.set_entities(key, [Entity.from_payload(e) for e in data["entities"]])
                for to_id, kind, weight, created_at, label in data["edges"]:
                    graph.add(Edge(key, to_id, kind, weight, created_at, label))

    # ------------------------------------------------------------------ writes
    def add_edges(self, agent_id: str, edges: Iterable[Edge]) -> None:
        """Record edges between memories of ``agent_id`` (for other engine parts); edges whose
        endpoints are not memories of the agent are skipped."""
        agent = self.memories.agent(SYSTEM, agent_id)
        graph = self.graph(agent_id, create=True)
        if agent is None or graph is None:
            return
        with graph.lock:
            dirty = []
            for edge in edges:
                if edge.edge_type not in EDGE_TYPES or edge.from_id == edge.to_id:
                    continue
                if edge.from_id in agent.memories and edge.to_id in agent.memories:
                    graph.add(edge)
                    dirty.append(edge.from_id)
            self.persist(graph, dirty, agent.memories, strict=True)

    def link(
        self, caller: Caller, source_id: str, target_id: Any, agent_id: Any, label: Any
    ) -> Edge:
        """An explicit ``linked_by`` edge between two memories of one agent (idempotent: a second
        link replaces the label). Both must be visible; links across agents are refused."""
        if not isinstance(target_id, str) or not target_id:
            raise InvalidInput("'target_id' must be a memory id")
        if label is not None and (not isinstance(label, str) or len(label) > MAX_LABEL_CHARS):
            raise InvalidInput(f"'label' must be a string of at most {MAX_LABEL_CHARS} characters")
        if source_id == target_id:
            raise InvalidInput("a memory cannot be linked to itself")
        source = self.memories.get(caller, source_id, agent_id)
        try:
            target = self.memories.get(caller, target_id, agent_id)
        except MemoryNotFound:
            elsewhere = self._holder(caller, target_id)
            if elsewhere is not None:
                raise InvalidInput(
                    f"memory '{target_id}' belongs to another agent; links across agents "
                    "are not allowed"
                ) from None
            raise
        edge = Edge(source.id, target.id, "linked_by", 1.0, int(self.memories.clock()), label)
        self.add_edges(source.agent_id, [edge])
        return edge

    def _holder(self, caller: Caller, memory_id: str) -> str | None:
        try:
            return self.memories.get(caller, memory_id, None).agent_id
        except (MemoryNotFound, InvalidInput):
            return None

    def entities_of(self, caller: Caller, memory_id: str) -> tuple[Memory, list[Entity]]:
        """A visible memory and its entities (404 when invisible or unknown)."""
        memory = self.memories.get(caller, memory_id, None)
        graph = self.graph(memory.agent_id)
        if graph is None:
            return memory, []
        with graph.lock:
            known = graph.entities.get(memory.id)
        if known is None and self._backfill is not None:
            if self._backfill.is_pending(memory.agent_id, memory.id):
                # Not reached by the start-up backfill yet: the same extraction, on demand.
                namespace = agent_namespace(memory.agent_id)
                return memory, self.entities.for_memory(memory, namespace, remote=False)
        return memory, list(known or ())
