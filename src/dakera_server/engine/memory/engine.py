"""The memory engine: store, read, update and forget agent memories, durably.

A write is validated whole, embedded, committed to the store in one batch, and only then put
into the in-memory indexes, so a rejected request writes nothing and an acknowledged one is both
durable and immediately recallable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from dakera_server.engine.access import Caller, agent_namespace
from dakera_server.engine.ann.snapshots import SnapshotStore
from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.memory.agents import AgentMemories
from dakera_server.engine.memory.counters import AccessCounters
from dakera_server.engine.memory.decay import DEFAULT_DECAY_POLICY, DecayPolicy
from dakera_server.engine.memory.loading import load_agents, save_agent_snapshots
from dakera_server.engine.memory.models import Memory
from dakera_server.engine.memory.owners import MemoryOwners
from dakera_server.engine.memory.writes import (
    NewMemory,
    StoreOutcome,
    Truncation,
    apply_changes,
    check_batch,
    truncations_of,
    validate_new,
)
from dakera_server.engine.rules import (
    check_importance,
)
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.errors import InvalidInput, MemoryNotFound
from dakera_server.storage.base import Op, Store

__all__ = ["Clock", "MemoryEngine"]

Clock = Callable[[], float]


def _metadata_sizes(memories: list[Memory]) -> Callable[[], Iterable[int]]:
    """Compact JSON sizes of the memories' metadata, computed only if a quota asks."""
    return lambda: (len(orjson.dumps(m.metadata)) for m in memories)


def _nothing(_agent_id: str) -> None:
    """Default ``follow``: a store of one process has nothing to catch up with."""


def _everything() -> None:
    """Default ``follow_all``."""


class MemoryEngine:
    """Agent memories: validation, embedding, durable writes, and the in-memory indexes."""

    def __init__(
        self,
        store: Store,
        embedder: EmbeddingProvider,
        *,
        max_content_bytes: int,
        exact_threshold: int,
        clock: Clock = time.time,
        events: EventBus | None = None,
    ) -> None:
        self.storage = store
        self.embedder = embedder
        self.max_content_bytes = max_content_bytes
        self.exact_threshold = exact_threshold
        self.clock = clock
        self.events = events if events is not None else EventBus(clock)
        self._agents: dict[str, AgentMemories] = {}
        self.owners = MemoryOwners()
        self._agents_lock = threading.Lock()
        self.counters = AccessCounters(self)  # recall hits not written yet
        # Set by the engine: where agent index snapshots live (None: always rebuild).
        self.snapshots: SnapshotStore | None = None
        # Set by the lifecycle engine: the decay curve that applies to a memory (recall ranking).
        self.decay_policy: Callable[[Memory], DecayPolicy] = lambda _m: DEFAULT_DECAY_POLICY
        # Set by the lifecycle engine from the namespace memory policy: per-type default TTL,
        # and the expiry a recall hit extends to (spaced repetition).
        self.default_ttl: Callable[[str, str], int | None] = lambda _agent, _type: None
        self.extended_expiry: Callable[[Memory, int], int | None] = lambda m, _now: m.expires_at
        # Derived data (knowledge graph, entities): called after memories are committed and
        # indexed with these vectors, and after memories are deleted.
        self.on_indexed: list[Callable[[Sequence[Memory], npt.NDArray[np.float32]], None]] = []
        self.on_forgotten: list[Callable[[str, Sequence[Memory]], None]] = []
        # Checks other domains make on validated memories before anything is written
        # (an ``attachment_ref`` must name a stored attachment).
        self.before_store: list[Callable[[Sequence[Memory]], None]] = []
        # Set by the engine (quotas): ``admit(namespace, existing, added, dimension,
        # metadata_sizes)`` runs under the agent's lock before the durable write and raises to
        # refuse it, so a refused batch writes nothing.
        self.admit: Callable[[str, int, int, int | None, Callable[[], Iterable[int]]], None] = (
            lambda *_args: None
        )
        # Set by the follower on a store shared by several nodes (engine/follow): catch up one
        # agent, or every agent, with what other nodes committed, before reading it.
        self.follow: Callable[[str], None] = _nothing
        self.follow_all: Callable[[], None] = _everything

    # ----------------------------------------------------------------- loading
    def load(self) -> int:
        """Rebuild every agent's indexes from the store; returns the number of memories."""
        return load_agents(self)

    def reset(self) -> None:
        """Forget every in-memory index and pending access statistic, before ``load`` re-reads
        a store whose contents were replaced underneath (a restore)."""
        with self.counters.flush_lock:
            with self._agents_lock:
                self._agents = {}
                self.owners.clear()
            self.counters.clear()

    def save_snapshots(self) -> int:
        """Snapshot every agent index big enough for HNSW (at shutdown); returns how many."""
        return save_agent_snapshots(self)

    # ----------------------------------------------------------------- lookups
    def _agent(self, agent_id: str, *, create: bool = False) -> AgentMemories:
        self.follow(agent_id)
        agent = self.held(agent_id, create=create)
        if agent is None:
            raise MemoryNotFound(f"agent '{agent_id}' has no memories")
        return agent

    def held(self, agent_id: str, *, create: bool = False) -> AgentMemories | None:
        """The agent as this node holds it, without catching up (the follower's own access)."""
        with self._agents_lock:
            agent = self._agents.get(agent_id)
            if agent is None and create:
                agent = AgentMemories(
                    agent_id, self.embedder.dimension, exact_threshold=self.exact_threshold
                )
                self._agents[agent_id] = agent
            return agent

    def ensure_agent(self, agent_id: str) -> bool:
        """Make an (empty) agent exist in memory; True if it was new."""
        with self._agents_lock:
            known = agent_id in self._agents
        if not known:
            self._agent(agent_id, create=True)
        return not known

    def held_agents(self) -> list[AgentMemories]:
        """Every agent this node holds, without catching up."""
        with self._agents_lock:
            return list(self._agents.values())

    def counts(self) -> dict[str, int]:
        """How many agents and memories are held (for metrics)."""
        agents = self.held_agents()
        return {"agents": len(agents), "memories": sum(len(a) for a in agents)}

    def agent(self, caller: Caller, agent_id: str) -> AgentMemories | None:
        """The agent's state if it exists and the caller may see it."""
        if not caller.can_see_agent(agent_id):
            return None
        self.follow(agent_id)
        with self._agents_lock:
            return self._agents.get(agent_id)

    def agent_ids(self, caller: Caller) -> list[str]:
        """Agents with memories that the caller may see, sorted."""
        self.follow_all()
        with self._agents_lock:
            names = list(self._agents)
        return sorted(a for a in names if caller.can_see_agent(a))

    def live(self, agent: AgentMemories) -> list[Memory]:
        """The agent's memories that have not expired."""
        now = self.clock()
        with agent.lock:
            return [m for m in agent.memories.values() if not m.is_expired(now)]

    def get(self, caller: Caller, memory_id: str, agent_id: str | None = None) -> Memory:
        """One memory by id; without ``agent_id``, looked up across the caller's agents."""
        if agent_id is not None:
            agent = self.agent(caller, agent_id)
            memory = None if agent is None else agent.memories.get(memory_id)
            if memory is None or memory.is_expired(self.clock()):
                raise MemoryNotFound(f"memory '{memory_id}' not found", resource="memory")
            return memory
        self.follow_all()
        holders = sorted(a for a in self.owners.of(memory_id) if caller.can_see_agent(a))
        found = [self.get(caller, memory_id, a) for a in holders]
        if not found:
            raise MemoryNotFound(f"memory '{memory_id}' not found", resource="memory")
        if len(found) > 1:
            raise InvalidInput(
                f"memory id '{memory_id}' exists for several agents ({', '.join(holders)}); "
                "pass agent_id"
            )
        return found[0]

    # ------------------------------------------------------------------ writes
    def store(
        self, caller: Caller, items: Sequence[NewMemory], extra_ops: Iterable[Op] = ()
    ) -> StoreOutcome:
        """Validate, embed and durably store ``items`` (all or nothing), then index them.

        ``extra_ops`` are committed in the same transaction (session activity, say).
        """
        now = int(self.clock())
        batch = len(items) > 1
        memories = [
            validate_new(
                item,
                now,
                max_content_bytes=self.max_content_bytes,
                default_ttl=self.default_ttl,
                where=f"memories[{i}]." if batch else "",
            )
            for i, item in enumerate(items)
        ]
        return self.insert(caller, memories, extra_ops)

    def insert(
        self,
        caller: Caller,
        memories: list[Memory],
        extra_ops: Iterable[Op] = (),
        *,
        keep_times: bool = False,
    ) -> StoreOutcome:
        """Embed and durably store already validated ``memories`` (all or nothing), then index
        them. ``keep_times``: the records' own timestamps and access counts are kept even when
        they replace a memory (an import restoring exported records), instead of the first
        creation time of the one replaced."""
        check_batch(caller, memories)
        for check in self.before_store:
            check(memories)
        started = time.perf_counter()
        embedded = self.embedder.embed([m.content for m in memories])
        embedding_ms = (time.perf_counter() - started) * 1000.0
        truncations = truncations_of(memories, embedded, self.embedder.max_tokens)
        by_agent: dict[str, list[int]] = {}
        for index, memory in enumerate(memories):
            by_agent.setdefault(memory.agent_id, []).append(index)
        with ExitStack() as held:
            # The write and the index update under the agents' locks (in a fixed order), so
            # the store and the indexes see concurrent writes to one memory in the same order.
            agents = {a: self._agent(a, create=True) for a in sorted(by_agent)}
            for agent in agents.values():
                held.enter_context(agent.lock)
            if not keep_times:
                self._keep_created_at(memories)
            for memory in memories:
                if not memory.seq:
                    memory.seq = agents[memory.agent_id].next_seq()
            for agent_id, indexes in by_agent.items():
                held_now = agents[agent_id]
                added = sum(1 for i in indexes if memories[i].id not in held_now.memories)
                self.admit(
                    agent_namespace(agent_id),
                    len(held_now),
                    added,
                    self.embedder.dimension,
                    _metadata_sizes([memories[i] for i in indexes]),
                )
            ops = [self.put_op(m, embedded.vectors[i]) for i, m in enumerate(memories)]
            ops.extend(extra_ops)
            self.storage.write(ops)
            for agent_id, indexes in by_agent.items():
                agents[agent_id].put_many([memories[i] for i in indexes], embedded.vectors[indexes])
                self.owners.add(agent_id, [memories[i] for i in indexes])
        for memory in memories:
            self.events.emit(
                "stored",
                agent_id=memory.agent_id,
                memory_id=memory.id,
                session_id=memory.session_id,
                importance=memory.importance,
                content=memory.content,
                tags=tuple(memory.tags),
            )
        for hook in self.on_indexed:
            hook(memories, embedded.vectors)
        return StoreOutcome(memories, truncations, embedding_ms)

    def _keep_created_at(self, memories: list[Memory]) -> None:
        """Re-storing a client id replaces the memory but keeps when it was first created."""
        for memory in memories:
            with self._agents_lock:
                agent = self._agents.get(memory.agent_id)
            old = None if agent is None else agent.memories.get(memory.id)
            if old is not None:
                memory.created_at = old.created_at
                memory.access_count = old.access_count
                memory.seq = old.seq

    def put_op(self, memory: Memory, vector: npt.NDArray[np.float32] | None) -> Op:
        blob = None if vector is None else np.ascontiguousarray(vector, np.float32).tobytes()
        return Op.put(
            "memories", memory.id, memory.to_payload(), group=memory.agent_id, vector=blob
        )

    def update(
        self, caller: Caller, agent_id: str, memory_id: str, changes: dict[str, Any]
    ) -> tuple[Memory, Truncation | None]:
        """Apply ``changes`` (content, metadata, memory_type, importance, tags) durably.

        The changes are checked and the new content embedded first; then, under the agent's
        lock, they are applied to the memory as it is *then* (a concurrent update is not
        undone, a concurrent forget is not undone either: the update answers 404).
        """
        current = self.get(caller, memory_id, agent_id)
        now = int(self.clock())
        self._apply_changes(current, changes, now)  # refuse bad input before any work
        content = changes.get("content")
        embedded = None
        if isinstance(content, str) and content != current.content:
            embedded = self.embedder.embed([content])
        agent = self._agent(agent_id)
        with agent.lock:
            latest = agent.memories.get(memory_id)
            if latest is None or latest.is_expired(self.clock()):
                raise MemoryNotFound(f"memory '{memory_id}' not found", resource="memory")
            updated = self._apply_changes(latest, changes, now)
            if updated.content == latest.content:
                embedded = None
            elif embedded is None:  # content changed meanwhile back to what we were given
                embedded = self.embedder.embed([updated.content])
            new_vector = None if embedded is None else embedded.vectors[0]
            vector = new_vector if new_vector is not None else agent.vectors.get_vector(memory_id)
            self.storage.write([self.put_op(updated, vector)])
            agent.replace_text(updated, new_vector)
        cut = (
            []
            if embedded is None
            else truncations_of([updated], embedded, self.embedder.max_tokens)
        )
        if new_vector is not None:
            for hook in self.on_indexed:
                hook([updated], new_vector.reshape(1, -1))
        return updated, cut[0] if cut else None

    def _apply_changes(self, current: Memory, changes: dict[str, Any], now: int) -> Memory:
        return apply_changes(current, changes, now, max_content_bytes=self.max_content_bytes)

    def set_importance(
        self, caller: Caller, agent_id: str, memory_ids: Sequence[str], importance: Any
    ) -> list[Memory]:
        """Set the importance of several memories in one durable write."""
        value = check_importance(importance)
        for memory_id in memory_ids:
            self.get(caller, memory_id, agent_id)  # 404 for an unknown id, before any write
        now = int(self.clock())
        agent = self._agent(agent_id)
        updated = []
        with agent.lock:
            for memory_id in memory_ids:
                latest = agent.memories.get(memory_id)
                if latest is None:  # forgotten meanwhile
                    raise MemoryNotFound(f"memory '{memory_id}' not found", resource="memory")
                copy = Memory(**{**latest.__dict__})
                copy.importance = value
                copy.updated_at = now
                updated.append(copy)
            self.storage.write([self.put_op(m, agent.vectors.get_vector(m.id)) for m in updated])
            for memory in updated:
                agent.replace_text(memory, None)
        for memory in updated:
            self.events.emit(
                "importance_updated",
                agent_id=agent_id,
                memory_id=memory.id,
                importance=memory.importance,
            )
        return updated

    def forget(self, caller: Caller, agent_id: str, memory_ids: Iterable[str]) -> list[Memory]:
        """Delete memories durably; unknown ids are skipped. Returns what was deleted."""
        agent = self.agent(caller, agent_id)
        if agent is None:
            return []
        with agent.lock:
            targets = [agent.memories[i] for i in dict.fromkeys(memory_ids) if i in agent.memories]
            if not targets:
                return []
            self.storage.write([Op.delete("memories", m.id, group=agent_id) for m in targets])
            removed = agent.remove(m.id for m in targets)
        for forgotten in self.on_forgotten:
            forgotten(agent_id, removed)
        self.owners.discard(agent_id, removed)
        for memory in removed:
            self.events.emit("forgotten", agent_id=agent_id, memory_id=memory.id)
        return removed

    def adopt_remote(
        self, agent_id: str, present: Sequence[Memory], removed: Sequence[Memory]
    ) -> None:
        """Ownership bookkeeping after the follower reloaded memories another node wrote (no
        hooks run: that node derived and persisted their graph rows and attachments)."""
        self.owners.add(agent_id, present)
        kept = {p.id for p in present}
        self.owners.discard(agent_id, [m for m in removed if m.id not in kept])

    def apply(
        self,
        agent_id: str,
        *,
        put: Sequence[tuple[Memory, npt.NDArray[np.float32] | None]] = (),
        delete: Sequence[str] = (),
        extra_ops: Sequence[Op] = (),
        unchanged: Sequence[Memory] = (),
    ) -> bool:
        """Commit engine-made changes to one agent in one atomic durable write, then index them.

        Lifecycle jobs (decay, feedback, deduplication, consolidation, TTL, restore) change
        memories no client sent. A ``None`` vector keeps the indexed one. Everything, including
        ``extra_ops`` (trash rows, say), commits together, so an interrupted job leaves each call
        applied or not. ``unchanged`` are the memories the change was computed from: if one is no
        longer the current object (updated, forgotten), nothing is written and False is
        returned. Only the check, the write and the index swap hold the agent's lock (recall
        waits on it); derived-data hooks run after it is released.
        """
        agent = self._agent(agent_id, create=True)
        vectors = [v if v is not None else agent.vectors.get_vector(m.id) for m, v in put]
        ops = [self.put_op(m, v) for (m, _), v in zip(put, vectors, strict=True)]
        ops += [Op.delete("memories", memory_id, group=agent_id) for memory_id in delete]
        fresh = [(m, v) for m, v in put if v is not None]
        with agent.lock:
            if any(agent.memories.get(m.id) is not m for m in unchanged):
                return False
            self.storage.write([*ops, *extra_ops])
            if fresh:
                agent.put_many([m for m, _ in fresh], np.stack([v for _, v in fresh]))
            for memory, vector in put:
                if vector is None:
                    agent.replace_text(memory, None)
            self.owners.add(agent_id, [m for m, _ in put])
            gone = agent.remove(delete)
        for hook in self.on_indexed if fresh else ():
            hook([m for m, _ in fresh], np.stack([v for _, v in fresh]))
        for forgotten in self.on_forgotten if gone else ():
            forgotten(agent_id, gone)
        self.owners.discard(agent_id, gone)
        return True
