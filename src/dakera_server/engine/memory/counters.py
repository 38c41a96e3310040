"""Access statistics of recalled memories: counted in memory on the hot path, written in batches.

A recall hit raises the memory's ``access_count`` and ``last_accessed_at`` on the object the
agent holds, at once (decay and ranking read them); writing each hit durably would put a commit
on every recall, so hits are collected here and ``flush`` writes them every few seconds, before
a backup snapshot and at shutdown. On a store shared by several nodes the flush never brings
back a memory another node forgot (``Op.update``) and never writes over another node's content
change (it catches the agents up first); counts of one memory on two nodes combine as the larger
of the two (docs/scale-out.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from typing import Protocol

import numpy as np
import numpy.typing as npt

from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.memory.agents import AgentMemories
from dakera_server.engine.memory.models import Memory
from dakera_server.storage.base import Op, Store

__all__ = ["AccessCounters", "CountingEngine"]


class CountingEngine(Protocol):
    """What the counters need of the memory engine (``MemoryEngine`` is one)."""

    storage: Store
    events: EventBus
    clock: Callable[[], float]
    extended_expiry: Callable[[Memory, int], int | None]
    follow: Callable[[str], None]

    def held(self, agent_id: str, *, create: bool = False) -> AgentMemories | None: ...

    def put_op(self, memory: Memory, vector: npt.NDArray[np.float32] | None) -> Op: ...


class AccessCounters:
    """The recall hits of one engine's memories that the store has not seen yet."""

    def __init__(self, engine: CountingEngine) -> None:
        self._engine = engine
        self._dirty: dict[tuple[str, str], Memory] = {}
        self._dirty_lock = threading.Lock()
        # Held by a whole flush (collect and write) and by ``MemoryEngine.reset``: once a reset
        # returned, no flush of statistics taken before it can still reach the store (a restore).
        self.flush_lock = threading.Lock()

    def clear(self) -> None:
        """Drop every pending count (the memories they belong to are being dropped)."""
        with self._dirty_lock:
            self._dirty = {}

    def touch(self, memories: Iterable[Memory]) -> None:
        """Count a recall hit; persisted by ``flush`` (not on the hot path)."""
        engine = self._engine
        now = int(engine.clock())
        touched = list(memories)
        with self._dirty_lock:
            for memory in touched:
                memory.access_count += 1
                memory.last_accessed_at = now
                memory.expires_at = engine.extended_expiry(memory, now)
                self._dirty[(memory.agent_id, memory.id)] = memory
        for memory in touched:
            engine.events.emit(
                "recalled",
                agent_id=memory.agent_id,
                memory_id=memory.id,
                importance=memory.importance,
            )

    def carry(self, held: Memory, fresh: Memory) -> None:
        """Another node's row of a memory replaces ``held``: the new object keeps this node's
        counts when they are ahead (the larger of the two: counts are not summed across nodes,
        docs/scale-out.md) and, if they were not flushed yet, is the one flushed. Without this,
        a node whose flush came second dropped its own counts as stale."""
        with self._dirty_lock:
            fresh.access_count = max(fresh.access_count, held.access_count)
            fresh.last_accessed_at = max(fresh.last_accessed_at, held.last_accessed_at)
            key = (fresh.agent_id, fresh.id)
            if self._dirty.get(key) is held:
                self._dirty[key] = fresh

    def flush(self) -> int:
        """Persist access counters changed since the last flush; returns how many.

        The agents' locks are held from the catch-up to the commit. On a shared store the
        follower applies changes under those locks, and the commit moves this node's cursor
        before they are released, so the follower never takes this node's own flush for
        another node's and swaps the flushed counters over newer ones (one of the causes of
        recall order differing after a PostgreSQL backup was restored)."""
        engine = self._engine
        with self.flush_lock, ExitStack() as held:
            with self._dirty_lock:
                agents = sorted({agent_id for agent_id, _ in self._dirty})
            for agent_id in agents:  # one order for every flush: no lock cycle between two
                holder = engine.held(agent_id)
                if holder is not None:
                    held.enter_context(holder.lock)
            for agent_id in agents:
                # On a shared store: memories another node changed are reloaded first (new
                # objects that keep this node's counts: ``carry``). A no-op on the embedded
                # store.
                engine.follow(agent_id)
            with self._dirty_lock:  # after the catch-up: it may re-point entries
                dirty, self._dirty = self._dirty, {}
            ops = []
            for (agent_id, memory_id), memory in dirty.items():
                agent = engine.held(agent_id)
                if agent is None or agent.memories.get(memory_id) is not memory:
                    continue
                op = engine.put_op(memory, agent.vectors.get_vector(memory_id))
                # ``update``: a memory another node forgot meanwhile is not brought back.
                ops.append(
                    Op.update(
                        "memories",
                        op.row.key,
                        op.row.payload,
                        group=op.row.group,
                        vector=op.row.vector,
                    )
                )
            engine.storage.write(ops)
            return len(ops)
