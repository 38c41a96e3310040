"""Importance decay: curves, the policy that picks one per memory, and the decay cycle.

A memory's importance fades with the time since it was last *used* — stored, recalled, or
changed by a client — along a curve with a half-life (dakera-api.md §4.3, §7.3):

    decayed = base × curve(age / effective_half_life)

``curve(1) = 0.5`` for every strategy but ``flat``. Use reinforces in two ways: a recall hit
restarts the age (``last_accessed_at``), and every past hit stretches the half-life
(``× (1 + 0.5·ln(1 + access_count))``, spaced repetition). A memory flagged by feedback decays
four times faster.

``decayed_importance`` (``memory/decay.py``) is a pure function that recall ranking calls at
query time, so ranking is right whether or not a cycle has run. The decay cycle persists the
decayed value into ``importance`` (what clients see) and hard-deletes memories that fell below
``min_importance``. So that persisting does not bend the curve, the cycle records where the
curve started in ``metadata._dakera_decay`` (``base``, ``since``, ``at``, ``value``); a later
client change (importance no longer ``value``, or ``updated_at > at``) or recall hit
(``last_accessed_at > since``) starts a new curve from the current importance.

Policy: the global config (``PUT /v1/admin/decay/config``) gives the strategy, half-life and
``min_importance``, with optional per-memory-type half-lives. A namespace whose memory policy
was set (§4.5) overrides the strategy per type (``<type>_decay``) and, if given, the half-life
(``<type>_half_life_hours``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from dakera_server.engine.access import agent_namespace
from dakera_server.engine.lifecycle.state import SYSTEM, StateStore
from dakera_server.engine.memory.decay import (
    DECAY_KEY,
    STRATEGIES,
    DecayPolicy,
    curve_origin,
    decayed_importance,
)
from dakera_server.engine.memory.models import Memory
from dakera_server.engine.rules import MEMORY_TYPES, check_importance
from dakera_server.errors import InvalidInput

if TYPE_CHECKING:
    from dakera_server.engine.events.bus import EventBus
    from dakera_server.engine.lifecycle.jobs import JobContext
    from dakera_server.engine.memory.engine import MemoryEngine

__all__ = ["DecayConfig", "DecayEngine", "PolicySource"]

PERSIST_EPSILON = 0.005  # smaller changes are not worth a write; the curve stays exact anyway
BATCH = 500

# The namespace's stored memory policy (§4.5) or None when none was set.
PolicySource = Callable[[str], Mapping[str, Any] | None]


def _check_strategy(value: Any, field_name: str = "strategy") -> str:
    if not isinstance(value, str) or value.lower() not in STRATEGIES:
        raise InvalidInput(f"'{field_name}' must be one of {', '.join(STRATEGIES)}")
    return value.lower()


def _check_half_life(value: Any, field_name: str = "half_life_hours") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidInput(f"'{field_name}' must be a number of hours above 0")
    if value > 1_000_000:
        raise InvalidInput(f"'{field_name}' must be at most 1000000 hours")
    return float(value)


@dataclass(frozen=True)
class DecayConfig:
    """The global decay configuration (``GET/PUT /v1/admin/decay/config``)."""

    strategy: str = "exponential"
    half_life_hours: float = 168.0
    min_importance: float = 0.05
    type_half_life_hours: dict[str, float] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """The config object of §3.13 (plus the per-type half-lives, an extension)."""
        return asdict(self)

    def changed(self, changes: Mapping[str, Any]) -> DecayConfig:
        """A validated copy with the fields in ``changes`` set (absent or None = unchanged)."""
        updated = self
        if changes.get("strategy") is not None:
            updated = replace(updated, strategy=_check_strategy(changes["strategy"]))
        if changes.get("half_life_hours") is not None:
            updated = replace(updated, half_life_hours=_check_half_life(changes["half_life_hours"]))
        if changes.get("min_importance") is not None:
            value = check_importance(changes["min_importance"], "min_importance")
            updated = replace(updated, min_importance=value)
        per_type = changes.get("type_half_life_hours")
        if per_type is not None:
            if not isinstance(per_type, dict):
                raise InvalidInput("'type_half_life_hours' must be an object")
            checked = {}
            for kind, hours in per_type.items():
                if kind not in MEMORY_TYPES:
                    kinds = ", ".join(MEMORY_TYPES)
                    raise InvalidInput(f"'type_half_life_hours' keys must be one of {kinds}")
                checked[kind] = _check_half_life(hours, f"type_half_life_hours.{kind}")
            updated = replace(updated, type_half_life_hours=checked)
        return updated

    @classmethod
    def from_document(cls, document: Mapping[str, Any] | None) -> DecayConfig:
        """Rebuild a saved config (unknown or bad fields fall back to defaults)."""
        try:
            return cls().changed(document or {})
        except InvalidInput:
            return cls()


@dataclass
class CycleReport:
    """What one decay cycle did (``last_cycle`` of the stats)."""

    namespaces_processed: int = 0
    memories_processed: int = 0
    memories_decayed: int = 0
    memories_deleted: int = 0


class DecayEngine:
    """The decay configuration, the per-memory policy, the cycle and its counters."""

    def __init__(
        self,
        memories: MemoryEngine,
        state: StateStore,
        events: EventBus,
        policies: PolicySource | None = None,
    ) -> None:
        self.memories = memories
        self.state = state
        self.events = events
        self.policies = policies
        self.config = DecayConfig.from_document(state.load("decay.config"))
        # Ranking asks for every candidate of every recall: resolve once per namespace and type.
        self._resolved: dict[tuple[str, str], DecayPolicy] = {}
        self._stats: dict[str, Any] = state.load("decay.stats") or {
            "total_decayed": 0,
            "total_deleted": 0,
            "last_run_at": None,
            "cycles_run": 0,
        }

    def update_config(self, changes: Mapping[str, Any]) -> DecayConfig:
        """Validate and persist a config change; it applies from the next ranking and cycle."""
        config = self.config.changed(changes)
        self.state.save("decay.config", config.to_wire())
        self.config = config
        self.forget_resolved()
        return config

    def forget_resolved(self) -> None:
        """Drop cached policies (the config or a namespace policy changed)."""
        self._resolved = {}

    def policy_for(self, memory: Memory) -> DecayPolicy:
        """The curve for ``memory``: its namespace's stored policy, else the global config."""
        key = (memory.agent_id, memory.memory_type)
        resolved = self._resolved.get(key)
        if resolved is None:
            resolved = self._resolved[key] = self._resolve(memory)
        return resolved

    def _resolve(self, memory: Memory) -> DecayPolicy:
        config = self.config
        strategy, half_life = config.strategy, config.half_life_hours
        half_life = config.type_half_life_hours.get(memory.memory_type, half_life)
        policy = None if self.policies is None else self.policies(agent_namespace(memory.agent_id))
        if policy:
            kind = memory.memory_type
            named = policy.get(f"{kind}_decay")
            if isinstance(named, str) and named.lower() in STRATEGIES:
                strategy = named.lower()
            hours = policy.get(f"{kind}_half_life_hours")
            if isinstance(hours, int | float) and not isinstance(hours, bool) and hours > 0:
                half_life = float(hours)
        return DecayPolicy(strategy, half_life)

    def stats(self) -> dict[str, Any]:
        """Counters of §3.13 (``last_cycle`` only once a cycle ran)."""
        return dict(self._stats)

    def run_cycle(self, context: JobContext) -> dict[str, Any]:
        """Persist decayed importances and hard-delete memories below ``min_importance``."""
        report = CycleReport()
        agent_ids = self.memories.agent_ids(SYSTEM)
        context.progress(0, len(agent_ids))
        for position, agent_id in enumerate(agent_ids):
            agent = self.memories.agent(SYSTEM, agent_id)
            if agent is None:
                continue
            report.namespaces_processed += 1
            snapshot = self.memories.live(agent)
            for start in range(0, len(snapshot), BATCH):
                self._decay_batch(agent_id, snapshot[start : start + BATCH], report)
                context.checkpoint()
            context.progress(position + 1)
        now = int(self.memories.clock())
        self._stats = {
            "total_decayed": int(self._stats.get("total_decayed", 0)) + report.memories_decayed,
            "total_deleted": int(self._stats.get("total_deleted", 0)) + report.memories_deleted,
            "last_run_at": now,
            "cycles_run": int(self._stats.get("cycles_run", 0)) + 1,
            "last_cycle": asdict(report),
        }
        self.state.save("decay.stats", self._stats)
        return asdict(report)

    def _decay_batch(self, agent_id: str, batch: list[Memory], report: CycleReport) -> None:
        now = int(self.memories.clock())
        floor = self.config.min_importance
        # (memory as read, its decayed copy — or None to delete it)
        changes: list[tuple[Memory, Memory | None]] = []
        for memory in batch:
            report.memories_processed += 1
            value = decayed_importance(memory, now, self.policy_for(memory))
            if value < floor:
                changes.append((memory, None))
            elif abs(value - memory.importance) >= PERSIST_EPSILON:
                base, since = curve_origin(memory)
                copy = Memory(**memory.__dict__)
                copy.importance = round(value, 6)
                state = {"base": base, "since": since, "at": now, "value": copy.importance}
                copy.metadata = {**(memory.metadata or {}), DECAY_KEY: state}
                changes.append((memory, copy))
        if not changes:
            return
        # One write; if a memory changed since it was read, one by one (skipping those).
        done = changes if self._commit(agent_id, changes) else []
        if not done:
            done = [change for change in changes if self._commit(agent_id, [change])]
        deleted = [memory for memory, copy in done if copy is None]
        report.memories_decayed += len(done) - len(deleted)
        report.memories_deleted += len(deleted)
        for memory in deleted:
            self.events.emit(
                "forgotten",
                agent_id=agent_id,
                memory_id=memory.id,
                reason=f"importance decayed below {floor}",
            )

    def _commit(self, agent_id: str, changes: list[tuple[Memory, Memory | None]]) -> bool:
        return self.memories.apply(
            agent_id,
            put=[(copy, None) for _, copy in changes if copy is not None],
            delete=[memory.id for memory, copy in changes if copy is None],
            unchanged=[memory for memory, _ in changes],
        )
