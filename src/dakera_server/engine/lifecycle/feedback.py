"""Feedback and importance (dakera-api.md §4.1): signals that change how a memory ranks.

``upvote`` multiplies importance by 1.15 (cap 1.0), ``downvote`` by 0.85, ``flag`` changes no
importance but sets the decay flag, so the memory decays four times faster (``decay.py``).
``positive``/``negative`` are accepted as aliases and recorded under their canonical names —
the SDK parses ``signal`` as a strict enum.

Each signal is recorded in the memory's metadata: ``_dakera_feedback`` (the last 100 entries,
oldest first, each ``signal``/``timestamp``/``old_importance``/``new_importance``),
``_dakera_feedback_counts`` (all-time totals, for the agent summary) and ``reliability`` (the
T-I-F proportions the SDK's ``TifScore.from_metadata`` reads). The change, the history and the
counters commit in one write.
"""

from __future__ import annotations

from typing import Any

from dakera_server.engine.access import Caller
from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.memory.decay import FLAG_KEY
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.models import Memory
from dakera_server.errors import InvalidInput, Unavailable

__all__ = ["HISTORY_KEY", "SIGNALS", "FeedbackEngine"]

HISTORY_KEY = "_dakera_feedback"
COUNTS_KEY = "_dakera_feedback_counts"
RELIABILITY_KEY = "reliability"
MAX_HISTORY = 100
MAX_ATTEMPTS = 10
SIGNALS = {
    "upvote": "upvote",
    "positive": "upvote",
    "downvote": "downvote",
    "negative": "downvote",
    "flag": "flag",
}
FACTORS = {"upvote": 1.15, "downvote": 0.85, "flag": 1.0}
COUNT_NAMES = {"upvote": "upvotes", "downvote": "downvotes", "flag": "flags"}


def canonical_signal(value: Any) -> str:
    """``upvote``, ``downvote`` or ``flag`` for a valid signal or alias; 400 otherwise."""
    if not isinstance(value, str) or value.lower() not in SIGNALS:
        raise InvalidInput("'signal' must be one of upvote, downvote, flag (or positive, negative)")
    return SIGNALS[value.lower()]


def reliability(counts: dict[str, int]) -> dict[str, Any]:
    """T-I-F proportions as the SDK computes them (thin evidence adds indeterminacy)."""
    up, down, flags = counts.get("upvotes", 0), counts.get("downvotes", 0), counts.get("flags", 0)
    total = up + down + flags
    if total == 0:
        return {"truth": 0.0, "indeterminacy": 1.0, "falsity": 0.0, "feedback_count": 0}
    base = (3 - total) * 0.25 if total < 3 else 0.0
    truth, falsity, indeterminacy = up / total, down / total, flags / total + base
    scale = truth + falsity + indeterminacy
    return {
        "truth": truth / scale,
        "indeterminacy": indeterminacy / scale,
        "falsity": falsity / scale,
        "feedback_count": total,
    }


class FeedbackEngine:
    """Applies feedback and importance overrides, and reports on them."""

    def __init__(self, memories: MemoryEngine, events: EventBus) -> None:
        self.memories = memories
        self.events = events

    def submit(self, caller: Caller, agent_id: str, memory_id: str, signal: Any) -> Memory:
        """Apply one signal durably; returns the updated memory."""
        kind = canonical_signal(signal)
        agent_id = _required(agent_id)
        # Read-modify-write, retried if the memory changed in between: concurrent signals all
        # count, and none overwrites a client's update.
        for _ in range(MAX_ATTEMPTS):
            current = self.memories.get(caller, memory_id, agent_id)
            updated = self._with_signal(current, kind)
            if self.memories.apply(agent_id, put=[(updated, None)], unchanged=[current]):
                break
        else:
            raise Unavailable("the memory kept changing; retry the feedback")
        self.events.emit(
            "importance_updated",
            agent_id=agent_id,
            memory_id=memory_id,
            importance=updated.importance,
            reason=f"feedback: {kind}",
        )
        return updated

    def _with_signal(self, current: Memory, kind: str) -> Memory:
        now = int(self.memories.clock())
        updated = Memory(**current.__dict__)
        updated.importance = round(min(1.0, current.importance * FACTORS[kind]), 6)
        metadata = dict(current.metadata or {})
        history = [e for e in metadata.get(HISTORY_KEY) or [] if isinstance(e, dict)]
        history.append(
            {
                "signal": kind,
                "timestamp": now,
                "old_importance": current.importance,
                "new_importance": updated.importance,
            }
        )
        counts = dict(metadata.get(COUNTS_KEY) or {})
        counts[COUNT_NAMES[kind]] = int(counts.get(COUNT_NAMES[kind], 0)) + 1
        metadata[HISTORY_KEY] = history[-MAX_HISTORY:]
        metadata[COUNTS_KEY] = counts
        metadata[RELIABILITY_KEY] = reliability(counts)
        if kind == "flag":
            metadata[FLAG_KEY] = True
        updated.metadata = metadata
        updated.updated_at = now
        return updated

    def history(self, caller: Caller, agent_id: Any, memory_id: str) -> list[dict[str, Any]]:
        """The memory's feedback entries, oldest first."""
        memory = self.memories.get(caller, memory_id, _required(agent_id))
        entries = (memory.metadata or {}).get(HISTORY_KEY) or []
        return [e for e in entries if isinstance(e, dict)]

    def patch_importance(
        self, caller: Caller, agent_id: Any, memory_id: str, importance: Any
    ) -> Memory:
        """Override a memory's importance; answers the updated memory."""
        # set_importance emits ``importance_updated`` itself.
        return self.memories.set_importance(caller, _required(agent_id), [memory_id], importance)[0]

    def _live(self, caller: Caller, agent_id: str) -> list[Memory]:
        agent = self.memories.agent(caller, agent_id)
        return [] if agent is None else self.memories.live(agent)

    def summary(self, caller: Caller, agent_id: str) -> dict[str, Any]:
        """Feedback totals over the agent's memories and its health score."""
        live = self._live(caller, agent_id)
        totals = {"upvotes": 0, "downvotes": 0, "flags": 0}
        for memory in live:
            counts = (memory.metadata or {}).get(COUNTS_KEY) or {}
            for name in totals:
                value = counts.get(name, 0)
                totals[name] += value if isinstance(value, int) else 0
        return {
            "agent_id": agent_id,
            **totals,
            "total_feedback": sum(totals.values()),
            "health_score": _mean_importance(live),
        }

    def health(self, caller: Caller, agent_id: Any) -> dict[str, Any]:
        """Mean importance of the agent's non-expired memories."""
        agent_id = _required(agent_id)
        live = self._live(caller, agent_id)
        mean = _mean_importance(live)
        return {
            "agent_id": agent_id,
            "health_score": mean,
            "memory_count": len(live),
            "avg_importance": mean,
        }


def _required(agent_id: Any) -> str:
    if not isinstance(agent_id, str) or not agent_id:
        raise InvalidInput("'agent_id' is required")
    return agent_id


def _mean_importance(memories: list[Memory]) -> float:
    return sum(m.importance for m in memories) / len(memories) if memories else 0.0
