"""TTL: expired memories are never returned and are purged by a sweep (dakera-api.md §4.4, §7.3).

A memory expires at ``expires_at`` (given, or creation + ``ttl_seconds``). Reads already hide
expired memories (``Memory.is_expired``); the sweep — every ``DAKERA_TTL_SWEEP_INTERVAL_SECS``,
or ``POST /v1/admin/ttl/cleanup`` — hard-deletes them in atomic batches and also purges trash
entries past ``restorable_until``. Stats are per agent namespace (``_dakera_agent_<id>``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dakera_server.engine.access import AGENT_NAMESPACE_PREFIX, agent_namespace
from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.lifecycle.jobs import JobContext
from dakera_server.engine.lifecycle.state import SYSTEM
from dakera_server.engine.lifecycle.trash import Trash
from dakera_server.engine.memory.engine import MemoryEngine

__all__ = ["SweepReport", "TtlSweeper"]

BATCH = 500
HOUR = 3600
DAY = 86400


@dataclass
class SweepReport:
    """What one sweep removed."""

    memories_removed: int = 0
    namespaces_cleaned: list[str] = field(default_factory=list)
    trash_purged: int = 0


class TtlSweeper:
    """Expiry statistics and the sweep that purges expired memories."""

    def __init__(self, memories: MemoryEngine, trash: Trash, events: EventBus) -> None:
        self.memories = memories
        self.trash = trash
        self.events = events

    def stats(self) -> dict[str, Any]:
        """§4.4 stats: per namespace with at least one TTL memory, and totals."""
        now = self.memories.clock()
        namespaces = []
        for agent_id in self.memories.agent_ids(SYSTEM):
            agent = self.memories.agent(SYSTEM, agent_id)
            if agent is None:
                continue
            with agent.lock:
                snapshot = list(agent.memories.values())
            expiries = [m.expires_at for m in snapshot if m.expires_at is not None]
            if not expiries:
                continue
            live = [e for e in expiries if e > now]
            namespaces.append(
                {
                    "namespace": agent_namespace(agent_id),
                    "vectors_with_ttl": len(live),
                    "expiring_within_hour": sum(1 for e in live if e <= now + HOUR),
                    "expiring_within_day": sum(1 for e in live if e <= now + DAY),
                    "expired_pending_cleanup": len(expiries) - len(live),
                }
            )
        return {
            "namespaces": namespaces,
            "total_with_ttl": sum(n["vectors_with_ttl"] for n in namespaces),
            "total_expired": sum(n["expired_pending_cleanup"] for n in namespaces),
        }

    def sweep(self, context: JobContext, namespace: str | None = None) -> SweepReport:
        """Hard-delete expired memories (of one agent namespace when given) and stale trash."""
        report = SweepReport()
        if namespace is None:
            agent_ids = self.memories.agent_ids(SYSTEM)
        elif namespace.startswith(AGENT_NAMESPACE_PREFIX):
            agent_ids = [namespace[len(AGENT_NAMESPACE_PREFIX) :]]
        else:
            agent_ids = []
        context.progress(0, len(agent_ids))
        for position, agent_id in enumerate(agent_ids):
            removed = self._sweep_agent(agent_id, context)
            if removed:
                report.memories_removed += removed
                report.namespaces_cleaned.append(agent_namespace(agent_id))
            context.progress(position + 1)
        if namespace is None:
            report.trash_purged = self.trash.purge_expired()
        return report

    def _sweep_agent(self, agent_id: str, context: JobContext) -> int:
        agent = self.memories.agent(SYSTEM, agent_id)
        if agent is None:
            return 0
        now = self.memories.clock()
        with agent.lock:  # a C-level copy; the scan itself runs without the lock
            snapshot = list(agent.memories.values())
        expired = [m for m in snapshot if m.is_expired(now)]
        removed = 0
        for start in range(0, len(expired), BATCH):
            batch = expired[start : start + BATCH]
            # One write; if one changed since (its expiry extended, say), one by one.
            if self.memories.apply(agent_id, delete=[m.id for m in batch], unchanged=batch):
                gone = batch
            else:
                gone = [
                    m for m in batch if self.memories.apply(agent_id, delete=[m.id], unchanged=[m])
                ]
            removed += len(gone)
            for memory in gone:
                self.events.emit(
                    "forgotten", agent_id=agent_id, memory_id=memory.id, reason="ttl expired"
                )
            context.checkpoint()
        return removed
