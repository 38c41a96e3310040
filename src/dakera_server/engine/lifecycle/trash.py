"""The trash: memories deduplication, consolidation or compression removed, kept restorable.

A removed memory is written to the ``trash`` table in the same atomic write that deletes it
(with its vector, so a restore needs no re-embedding) and stays restorable until
``restorable_until`` (``trash_retention_hours`` after removal; 0 keeps no copy). The TTL sweep
purges expired entries. ``GET /v1/memory/deduplicated`` lists them and ``restore`` puts one back
exactly as it was stored, under its own id (dakera-api.md §3.7).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from dakera_server.engine.access import Caller
from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.lifecycle.state import SYSTEM
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.models import Memory
from dakera_server.errors import Conflict, NotFound
from dakera_server.storage.base import Op

__all__ = ["KINDS", "Trash", "TrashEntry"]

KINDS = ("deduplication", "consolidation")


@dataclass(frozen=True)
class TrashEntry:
    """A restorable removed memory, as ``GET /v1/memory/deduplicated`` lists it."""

    agent_id: str
    id: str
    kind: str
    survivor_id: str
    deleted_at: int
    restorable_until: int
    session_id: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """One entry of the deduplicated list."""
        wire: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "survivor_id": self.survivor_id,
            "deleted_at": self.deleted_at,
            "restorable_until": self.restorable_until,
        }
        if self.session_id is not None:
            wire["session_id"] = self.session_id
        return wire


class Trash:
    """Restorable copies of removed memories, indexed in memory by agent."""

    def __init__(self, memories: MemoryEngine, events: EventBus) -> None:
        self.memories = memories
        self.events = events
        self._entries: dict[str, dict[str, TrashEntry]] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget every entry held in memory (before ``load`` after a restore)."""
        with self._lock:
            self._entries = {}

    def load(self) -> int:
        """Read the entries' headers from the store (start-up); returns how many."""
        count = 0
        for row in self.memories.storage.iter_rows("trash"):
            document = orjson.loads(row.payload)
            self._add(_entry(row.group, document))
            count += 1
        return count

    def reload_rows(self, agent_id: str, keys: list[str]) -> None:
        """Read these trash rows of ``agent_id`` again (another node wrote or removed them)."""
        for key in keys:
            row = self.memories.storage.get_row("trash", key, agent_id)
            if row is None:
                with self._lock:
                    self._entries.get(agent_id, {}).pop(key, None)
            else:
                self._add(_entry(agent_id, orjson.loads(row.payload)))

    def _add(self, entry: TrashEntry) -> None:
        with self._lock:
            self._entries.setdefault(entry.agent_id, {})[entry.id] = entry

    def ops(
        self,
        memory: Memory,
        kind: str,
        survivor_id: str,
        retention_hours: float,
        now: int,
    ) -> tuple[list[Op], TrashEntry | None]:
        """Store ops keeping ``memory`` restorable, and its entry (none when retention is 0).

        Commit the ops in the write that deletes the memory, then ``remember`` the entry.
        """
        if retention_hours <= 0:
            return [], None
        entry = TrashEntry(
            agent_id=memory.agent_id,
            id=memory.id,
            kind=kind,
            survivor_id=survivor_id,
            deleted_at=now,
            restorable_until=now + int(retention_hours * 3600),
            session_id=memory.session_id,
        )
        agent = self.memories.agent(SYSTEM, memory.agent_id)
        vector = None if agent is None else agent.vectors.get_vector(memory.id)
        payload = orjson.dumps(
            {
                "memory": memory.__dict__,
                "kind": kind,
                "survivor_id": survivor_id,
                "deleted_at": entry.deleted_at,
                "restorable_until": entry.restorable_until,
            }
        )
        blob = None if vector is None else np.ascontiguousarray(vector, np.float32).tobytes()
        return [Op.put("trash", memory.id, payload, group=memory.agent_id, vector=blob)], entry

    def replace(
        self,
        agent_id: str,
        new: Memory,
        vector: npt.NDArray[np.float32],
        sources: Sequence[Memory],
        kind: str,
        retention_hours: float,
        now: int,
    ) -> bool:
        """``new`` in, ``sources`` out to the trash as ``kind`` (restorable for
        ``retention_hours``), in one atomic write; False, with nothing written, when one of
        ``sources`` changed since it was read (consolidation and compression)."""
        copies = [self.ops(m, kind, new.id, retention_hours, now) for m in sources]
        committed = self.memories.apply(
            agent_id,
            put=[(new, vector)],
            delete=[m.id for m in sources],
            extra_ops=[op for ops, _ in copies for op in ops],
            unchanged=sources,
        )
        if committed:
            self.remember([entry for _, entry in copies])
        return committed

    def remember(self, entries: list[TrashEntry | None]) -> None:
        """Make committed entries listable."""
        for entry in entries:
            if entry is not None:
                self._add(entry)

    def list(self, caller: Caller, agent_id: str) -> list[TrashEntry]:
        """The agent's restorable entries, newest first (none for an invisible agent)."""
        if not caller.can_see_agent(agent_id):
            return []
        self.memories.follow(agent_id)  # entries another node made or restored
        now = self.memories.clock()
        with self._lock:
            entries = list(self._entries.get(agent_id, {}).values())
        live = [e for e in entries if e.restorable_until > now]
        return sorted(live, key=lambda e: (-e.deleted_at, e.id))

    def restore(self, caller: Caller, agent_id: str, memory_id: str) -> Memory:
        """Put a removed memory back as stored; 404 without a copy, 409 if the id is taken."""
        self.memories.follow(agent_id)
        with self._lock:
            entry = self._entries.get(agent_id, {}).get(memory_id)
        missing = NotFound(f"no restorable copy of memory '{memory_id}'", resource="memory")
        if entry is None or not caller.can_see_agent(agent_id):
            raise missing
        if entry.restorable_until <= self.memories.clock():
            raise missing
        row = self.memories.storage.get_row("trash", memory_id, agent_id)
        if row is None:
            raise missing
        memory = Memory(**orjson.loads(row.payload)["memory"])
        vector = _vector(row.vector, self.memories.embedder.dimension)
        if vector is None:
            vector = self.memories.embedder.embed([memory.content]).vectors[0]
        agent = self.memories.agent(SYSTEM, agent_id)
        lock = agent.lock if agent is not None else threading.RLock()
        with lock:
            if agent is not None and memory_id in agent.memories:
                raise Conflict(f"agent '{agent_id}' holds a memory with id '{memory_id}' again")
            self.memories.apply(
                agent_id,
                put=[(memory, vector)],
                extra_ops=[Op.delete("trash", memory_id, group=agent_id)],
            )
        with self._lock:
            self._entries.get(agent_id, {}).pop(memory_id, None)
        self.events.emit(
            "restored",
            agent_id=agent_id,
            memory_id=memory_id,
            reason=f"restored after {entry.kind} into {entry.survivor_id}",
        )
        return memory

    def purge_expired(self) -> int:
        """Delete entries past ``restorable_until``; returns how many."""
        now = self.memories.clock()
        with self._lock:
            expired = [
                e
                for agent in self._entries.values()
                for e in agent.values()
                if e.restorable_until <= now
            ]
        if not expired:
            return 0
        self.memories.storage.write([Op.delete("trash", e.id, group=e.agent_id) for e in expired])
        with self._lock:
            for entry in expired:
                self._entries.get(entry.agent_id, {}).pop(entry.id, None)
        return len(expired)

    def count(self) -> int:
        """How many entries are held (restorable or awaiting purge)."""
        with self._lock:
            return sum(len(agent) for agent in self._entries.values())


def _entry(agent_id: str, document: dict[str, Any]) -> TrashEntry:
    memory = document.get("memory") or {}
    return TrashEntry(
        agent_id=agent_id,
        id=str(memory.get("id", "")),
        kind=str(document.get("kind", "deduplication")),
        survivor_id=str(document.get("survivor_id", "")),
        deleted_at=int(document.get("deleted_at", 0)),
        restorable_until=int(document.get("restorable_until", 0)),
        session_id=memory.get("session_id"),
    )


def _vector(blob: bytes | None, dimension: int) -> npt.NDArray[np.float32] | None:
    if blob is None or len(blob) != dimension * 4:
        return None
    return np.frombuffer(blob, dtype=np.float32).copy()
