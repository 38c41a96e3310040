"""Start-up of the knowledge graph: read the persisted rows, repair them, and extract the
entities of memories that have none yet -- inline when they are few, in the background when
they are many.

A memory stored through the API gets its row (entities and outgoing edges) right after its own
commit, so after a restart, even after ``kill -9``, nearly every memory has one and start-up only
reads it. Memories without a row are those of a crash window (a handful) and memories written to
the store by other means (an import through the storage layer, a store from before the graph
existed): 100,000 of those cost 11-16 s of rule extraction on this 2-core machine (before the
extractor's pre-checks; ~6 s after), which more than doubled the start-up. Above
``INLINE_EXTRACTIONS`` they are handed to :class:`EntityBackfill`, which extracts them on a
daemon thread once the server is ready.

While an agent's backfill runs, its graph answers from what exists: recall, get and the graph
routes work; ``entities_of`` extracts a pending memory's entities on demand; a store or content
update of that agent waits for the backfill before it derives its edges, because its
``shares_entity`` links go to the latest memories mentioning the same entity, and those may be
among the pending ones (no edge is lost). When done, the agent's entity-mention index is rebuilt
in chronological order, exactly as an inline start-up would have built it, and the rows are
written. An interrupted backfill (shutdown, crash) leaves the rest without rows: the next start
extracts them again.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import Protocol

import orjson

from dakera_server.engine.access import agent_namespace
from dakera_server.engine.entities.extractor import Entity
from dakera_server.engine.entities.service import EntityService
from dakera_server.engine.graph.model import SYSTEM, AgentGraph, Edge
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.models import Memory
from dakera_server.storage.base import Op

__all__ = ["INLINE_EXTRACTIONS", "EntityBackfill", "GraphHost", "load_graph"]

logger = logging.getLogger("dakera_server.graph")

# Up to this many memories without a row, start-up extracts their entities itself (~1 s at
# ~55 us each): small and medium stores never see a backfill, nor a store waiting for one.
INLINE_EXTRACTIONS = 20_000
PERSIST_CHUNK = 500  # rows written per hold of the agent's graph lock by the backfill


class GraphHost(Protocol):
    """What loading needs of the knowledge graph (``KnowledgeGraph`` is the one host): its
    memories, its extractor, its per-agent graphs and its row writer. A protocol rather than an
    import, so the graph builds on this module and this module does not import the graph."""

    memories: MemoryEngine
    entities: EntityService

    def graph(self, agent_id: str, *, create: bool = False) -> AgentGraph | None:
        """The agent's graph (created empty when ``create``)."""
        ...

    def graphs(self) -> list[AgentGraph]:
        """Every agent's graph."""
        ...

    def persist(
        self, graph: AgentGraph, dirty: Iterable[str], live: Collection[str], *, strict: bool
    ) -> None:
        """Rewrite the rows of ``dirty`` memories (the caller holds ``graph.lock``)."""
        ...


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a bulk load.

    The load allocates a few container objects per edge and entity, none of them garbage, and
    with a million objects already alive each triggered full collection rescans them all
    (measured on 20,000 memories with 60,000 edges, 2 busy cores: 1.4–2.1 s with the collector
    on, 0.6–0.8 s with it paused).
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def load_graph(kg: GraphHost) -> tuple[int, list[Memory], EntityBackfill | None]:
    """Read every agent's rows, drop edges towards missing memories, and extract the entities
    of memories without a row (inline, or through the returned, not yet started backfill).

    Returns (edges, the memories extracted inline, backfill or None).
    """
    with _collector_paused():
        memories = kg.memories
        agents = {a: memories.agent(SYSTEM, a) for a in memories.agent_ids(SYSTEM)}
        dirty: dict[str, set[str]] = {}
        stale: list[Op] = []
        for row in memories.storage.iter_rows("edges"):
            agent = agents.get(row.group)
            if agent is None or row.key not in agent.memories:
                stale.append(Op.delete("edges", row.key, group=row.group))
                continue
            graph = kg.graph(row.group, create=True)
            assert graph is not None
            data = orjson.loads(row.payload)
            graph.entities[row.key] = tuple(Entity.from_payload(e) for e in data["entities"])
            for to_id, kind, weight, created_at, label in data["edges"]:
                if to_id in agent.memories:
                    graph.add(Edge(row.key, to_id, kind, weight, created_at, label))
                else:
                    dirty.setdefault(row.group, set()).add(row.key)
        missing: dict[str, list[Memory]] = {}
        for agent_id, agent in agents.items():
            if agent is None:
                continue
            ordered = sorted(agent.memories.values(), key=lambda m: (m.created_at, m.id))
            graph = kg.graph(agent_id, create=True)
            assert graph is not None
            without = [m for m in ordered if m.id not in graph.entities]
            if without:
                missing[agent_id] = without
        inline = sum(len(v) for v in missing.values()) <= INLINE_EXTRACTIONS
        extracted: list[Memory] = []
        for agent_id, agent in agents.items():
            if agent is None:
                continue
            graph = kg.graph(agent_id, create=True)
            assert graph is not None
            with graph.lock:
                if inline:
                    for memory in missing.get(agent_id, ()):
                        graph.entities[memory.id] = _extract(kg, memory)
                        dirty.setdefault(agent_id, set()).add(memory.id)
                        extracted.append(memory)
                _index_mentions(graph, agent.memories.values())
                kg.persist(graph, dirty.get(agent_id, ()), agent.memories, strict=False)
        # On a store shared by several nodes a row can look stale only because another node
        # stored its memory after this one read the memories: never delete it from here.
        if stale and memories.storage.change_log is None:
            memories.storage.write(stale)
        edges = sum(len(g.edges) for g in kg.graphs())
    backfill = None if inline or not missing else EntityBackfill(kg, missing)
    return edges, extracted, backfill


def _extract(kg: GraphHost, memory: Memory) -> tuple[Entity, ...]:
    # Never the sidecar at start-up: a dead sidecar must not stall it (rules stand in).
    namespace = agent_namespace(memory.agent_id)
    return tuple(kg.entities.for_memory(memory, namespace, remote=False))


def _index_mentions(graph: AgentGraph, live: Iterable[Memory]) -> None:
    """Rebuild ``graph.mentions`` from ``graph.entities`` in chronological order (newest last:
    what ``latest_mentions`` relies on). The caller holds ``graph.lock``."""
    graph.mentions.clear()
    for memory in sorted(live, key=lambda m: (m.created_at, m.id)):
        entities = graph.entities.get(memory.id)
        if entities:
            for entity in entities:
                if entity.key is not None:
                    graph.mentions.setdefault(entity.key, {})[memory.id] = None


class EntityBackfill:
    """Extracts, on one daemon thread, the entities of memories that had no row at start-up."""

    def __init__(self, kg: GraphHost, missing: dict[str, list[Memory]]) -> None:
        self._kg = kg
        self._missing = missing
        self._pending = {agent_id: {m.id for m in ms} for agent_id, ms in missing.items()}
        self._done = {agent_id: threading.Event() for agent_id in missing}
        self._stop = threading.Event()
        self._starting = threading.Lock()  # guards _thread, _stop's setting and _waiters
        self._waiters = 0
        self._thread: threading.Thread | None = None
        self.extracted = 0
        self.seconds = 0.0

    @property
    def total(self) -> int:
        """Memories the backfill was given."""
        return sum(len(v) for v in self._missing.values())

    def start(self) -> None:
        """Run in the background (once; not after ``stop``)."""
        with self._starting:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="dakera-entity-backfill", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        """Stop at the next memory and wait (shutdown); agents not finished stay without rows,
        and whoever waits on them is released."""
        with self._starting:
            self._stop.set()
            thread = self._thread
        if thread is not None:
            thread.join()
        for event in self._done.values():
            event.set()

    def is_pending(self, agent_id: str, memory_id: str) -> bool:
        """Whether ``memory_id``'s entities are still being extracted."""
        done = self._done.get(agent_id)
        return done is not None and not done.is_set() and memory_id in self._pending[agent_id]

    def fill_in(self, graph: AgentGraph, memory_ids: Iterable[str]) -> None:
        """Extract now the entities of those ``memory_ids`` still pending, before their rows
        are written for another reason (an explicit link, a neighbour forgotten): a row saved
        without them would read, at the next start, as "this memory has no entities". The
        caller holds ``graph.lock``; the mention index is left to the backfill's rebuild."""
        pending = self._pending.get(graph.agent_id)
        done = self._done.get(graph.agent_id)
        if pending is None or done is None or done.is_set():
            return
        agent = self._kg.memories.agent(SYSTEM, graph.agent_id)
        if agent is None:
            return
        for memory_id in memory_ids:
            memory = agent.memories.get(memory_id)
            if memory_id in pending and memory is not None and memory_id not in graph.entities:
                graph.entities[memory_id] = _extract(self._kg, memory)

    def wait(self, agent_id: str, timeout: float | None = None) -> bool:
        """Block until ``agent_id``'s backfill is done (at once if it has none); starts the
        backfill if nobody has yet."""
        done = self._done.get(agent_id)
        if done is None or done.is_set():
            return True
        self.start()
        with self._starting:
            self._waiters += 1
        try:
            return done.wait(timeout)
        finally:
            with self._starting:
                self._waiters -= 1

    def wait_all(self, timeout: float | None = None) -> bool:
        """Block until every agent's backfill is done."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for agent_id in self._done:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self.wait(agent_id, left):
                return False
        return True

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            for agent_id, memories in self._missing.items():
                if self._stop.is_set():
                    return
                try:
                    self._agent(agent_id, memories)
                except Exception:  # a bug must not leave waiting stores blocked forever
                    logger.exception("entity backfill of an agent failed")
                finally:
                    self._done[agent_id].set()
        finally:
            self.seconds = time.perf_counter() - started
            logger.info(
                "entity backfill: %d of %d memories in %.1f s",
                self.extracted,
                self.total,
                self.seconds,
            )

    def _agent(self, agent_id: str, memories: list[Memory]) -> None:
        found: dict[str, tuple[Entity, ...]] = {}
        for memory in memories:
            if self._stop.is_set():
                return
            found[memory.id] = _extract(self._kg, memory)
            if not self._waiters:
                # Hand the GIL over after each memory: without it a request thread waits up to
                # the 5 ms switch interval each time it wants the GIL back, and recall at
                # 100,000 memories went from p50 19 ms to 370 ms during the backfill; with it,
                # 22 ms (the backfill takes ~2x as long while requests keep arriving). Not
                # while a store waits for the backfill: then finishing is what matters.
                time.sleep(0)
        agent = self._kg.memories.agent(SYSTEM, agent_id)
        graph = self._kg.graph(agent_id, create=True)
        if agent is None or graph is None:
            return
        with graph.lock:
            # Only memories still there unchanged: a forgotten one has no row to write, and an
            # updated one got (or is getting) its entities from the update's own derivation.
            live = [m for m in memories if agent.memories.get(m.id) is m]
            for memory in live:
                graph.entities.setdefault(memory.id, found[memory.id])
            _index_mentions(graph, list(agent.memories.values()))
        self.extracted += len(live)
        ids = [m.id for m in live]
        for start in range(0, len(ids), PERSIST_CHUNK):
            # Rows are computed from the graph at write time, under its lock, chunk by chunk:
            # explicit links made meanwhile are in them, and the lock is never held for long.
            with graph.lock:
                if self._stop.is_set():
                    return
                chunk = ids[start : start + PERSIST_CHUNK]
                self._kg.persist(graph, chunk, agent.memories, strict=False)
            time.sleep(0)
