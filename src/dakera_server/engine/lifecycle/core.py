"""The lifecycle engine as one object: decay, TTL, feedback, dedup, consolidation, AutoPilot.

``Engine`` builds one ``Lifecycle``; routers reach its parts through ``engine.lifecycle``. Every
pass runs as a job (``jobs.py``) through ``run_job``, whether a client asked for it, the
scheduler found it due, or it is resuming after a crash — so all passes are visible in
``/ops/jobs``, serialised, throttled and resumable in one way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from dakera_server.engine.access import Caller
from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.lifecycle.autopilot import AutoPilot
from dakera_server.engine.lifecycle.compress import Compressor
from dakera_server.engine.lifecycle.consolidate import Consolidator
from dakera_server.engine.lifecycle.decay import DecayEngine
from dakera_server.engine.lifecycle.dedup import Deduplicator
from dakera_server.engine.lifecycle.feedback import FeedbackEngine
from dakera_server.engine.lifecycle.jobs import Job, JobContext, JobRegistry, Pass
from dakera_server.engine.lifecycle.policies import MemoryPolicy
from dakera_server.engine.lifecycle.policy import NamespacePolicies
from dakera_server.engine.lifecycle.state import SYSTEM, StateStore
from dakera_server.engine.lifecycle.trash import Trash
from dakera_server.engine.lifecycle.ttl import TtlSweeper
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.rules import MEMORY_TYPES, check_agent_id, check_importance
from dakera_server.errors import InvalidInput, Unavailable
from dakera_server.storage.base import Store

__all__ = ["TRIGGER_ACTIONS", "Lifecycle"]

TRIGGER_ACTIONS = ("dedup", "consolidate", "all", "decay", "ttl")
RESUMABLE = frozenset({"dedup", "consolidation", "compression"})
BUSY_RETRY_SECONDS = 5


class Lifecycle:
    """Every lifecycle part over one memory engine."""

    def __init__(
        self,
        store: Store,
        memories: MemoryEngine,
        events: EventBus,
        *,
        cpu_share: float = 0.25,
        autopilot_enabled: bool = True,
        decay_interval_secs: int = 3600,
        ttl_interval_secs: int = 60,
        policy_for: Callable[[str], MemoryPolicy] | None = None,
    ) -> None:
        self.memories = memories
        self.state = StateStore(store)
        self.jobs = JobRegistry(self.state, memories.clock, cpu_share=cpu_share)
        self.trash = Trash(memories, events)
        policies = None if policy_for is None else NamespacePolicies(policy_for)
        self.decay = DecayEngine(memories, self.state, events, policies)
        memories.decay_policy = self.decay.policy_for
        if policies is not None:
            memories.default_ttl = policies.default_ttl
            memories.extended_expiry = policies.extended_expiry
            policies.on_change.append(self.decay.forget_resolved)
            events.add_sink(
                lambda e: (
                    policies.invalidate(e.namespace) if e.event_type == "policy_changed" else None
                )
            )
        self.feedback = FeedbackEngine(memories, events)
        self.ttl = TtlSweeper(memories, self.trash, events)
        self.autopilot = AutoPilot(
            self.state,
            self.jobs,
            enabled_default=autopilot_enabled,
            decay_interval_secs=decay_interval_secs,
            ttl_interval_secs=ttl_interval_secs,
            last_decay_at=lambda: self.decay.stats().get("last_run_at"),
        )
        if store.change_log is not None:  # one node at a time on a shared store
            self.autopilot.exclusive = store.exclusive
            self.autopilot.shared = True
        self.dedup = Deduplicator(memories, self.trash, events, self._retention)
        self.consolidator = Consolidator(
            memories,
            self.trash,
            events,
            self.state,
            retention_hours=self._retention,
            cross_session=self._consolidate_cross_session,
        )
        self.compressor = Compressor(
            memories,
            self.trash,
            events,
            retention_hours=self._retention,
            cross_session=self._consolidate_cross_session,
        )

    def _retention(self) -> float:
        return float(self.autopilot.config.trash_retention_hours)

    def _consolidate_cross_session(self) -> bool:
        return self.autopilot.config.consolidate_cross_session

    # ----------------------------------------------------------------- process
    def load(self) -> int:
        """Read the trash index (start-up); returns how many entries it holds."""
        return self.trash.load()

    def reset(self) -> None:
        """Stop the scheduler and forget the trash index (before ``load`` after a restore);
        ``start`` runs the scheduler again."""
        self.stop()
        self.jobs.stop_event.clear()
        self.trash.reset()

    def start(self) -> None:
        """Start the scheduler (resumes interrupted jobs first)."""
        self.autopilot.start(self.run_job)

    def stop(self) -> None:
        """Stop the scheduler and any running pass at its next checkpoint."""
        self.autopilot.stop()

    # -------------------------------------------------------------------- jobs
    def run_job(self, kind: str, params: dict[str, Any], resumed_from: str | None = None) -> Job:
        """Run one pass as a job in this thread; returns the finished (or interrupted) job."""
        return self.jobs.run(
            kind,
            params,
            self._work(kind, params),
            resumable=kind in RESUMABLE,
            resumed_from=resumed_from,
        )

    def _result(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run a pass a client waits for; 503 if the server stopped it (it resumes later), or,
        on a store shared by several nodes, while another node runs a pass of that kind (the
        same advisory lock the schedulers take, so a pass never runs twice at once)."""
        with self.autopilot.exclusive(kind) as mine:
            if not mine:
                raise Unavailable(
                    f"a {kind} pass is running on another node; retry shortly",
                    retry_after=BUSY_RETRY_SECONDS,
                )
            job = self.run_job(kind, params)
        if job.status != "completed":
            raise Unavailable(
                f"the {kind} pass was interrupted by a shutdown; it resumes at the next start"
            )
        return job.result

    def _work(self, kind: str, params: dict[str, Any]) -> Pass:
        if kind == "decay":
            return self.decay.run_cycle
        if kind == "ttl_sweep":
            return lambda context: asdict(self.ttl.sweep(context, params.get("namespace")))
        if kind == "dedup":
            return lambda context: self._dedup_work(context, params)
        if kind == "consolidation":
            return lambda context: self._consolidation_work(context, params)
        if kind == "compression":
            return lambda context: self.compressor.compress(SYSTEM, params["agent_id"], context)
        raise InvalidInput(f"unknown job kind '{kind}'")

    def _dedup_work(self, context: JobContext, params: dict[str, Any]) -> dict[str, Any]:
        config = self.autopilot.config
        threshold = float(params.get("threshold") or config.dedup_threshold)
        cross_session = bool(params.get("cross_session", config.dedup_cross_session))
        if "agent_id" in params:  # one agent, as a client asked (POST /v1/knowledge/deduplicate)
            report = self.dedup.run(
                SYSTEM,
                params["agent_id"],
                threshold=threshold,
                memory_type=params.get("memory_type"),
                cross_session=cross_session,
                dry_run=bool(params.get("dry_run")),
                context=context,
            )
            return report.to_wire()
        mode = str(params.get("mode") or config.dedup_mode)
        totals: dict[str, Any] = {
            "namespaces_processed": 0,
            "memories_scanned": 0,
            "duplicates_removed": 0,
            "duplicates_found": 0,
            "mode": mode,
        }
        if mode == "off":
            return totals
        agent_ids = self.memories.agent_ids(SYSTEM)
        for done, agent_id in enumerate(agent_ids, start=1):
            report = self.dedup.run(
                SYSTEM,
                agent_id,
                threshold=threshold,
                memory_type=None,
                cross_session=cross_session,
                dry_run=mode != "merge",
                context=context,  # progress: groups of the agent being processed
            )
            totals["namespaces_processed"] += 1
            totals["memories_scanned"] += report.memories_scanned
            totals["duplicates_found"] += report.duplicates_found
            totals["duplicates_removed"] += report.removed_count
            context.note(**totals)
            context.job.message = f"{done} of {len(agent_ids)} agents done"
        self.autopilot.record(dedup_removed=int(totals["duplicates_removed"]))
        return totals

    def _consolidation_work(self, context: JobContext, params: dict[str, Any]) -> dict[str, Any]:
        if "agent_id" in params:
            return self.consolidator.consolidate_agent(SYSTEM, params["agent_id"], context)
        totals = {
            "namespaces_processed": 0,
            "memories_scanned": 0,
            "clusters_merged": 0,
            "memories_consolidated": 0,
        }
        agent_ids = self.memories.agent_ids(SYSTEM)
        for done, agent_id in enumerate(agent_ids, start=1):
            if self.consolidator.config(agent_id).enabled:
                answer = self.consolidator.consolidate_agent(SYSTEM, agent_id, context)
                totals["namespaces_processed"] += 1
                totals["memories_scanned"] += answer["memories_scanned"]
                totals["clusters_merged"] += len(answer["anchor_ids"])
                totals["memories_consolidated"] += answer["memories_deprecated"]
            context.note(**totals)
            context.job.message = f"{done} of {len(agent_ids)} agents done"
        self.autopilot.record(consolidated=totals["memories_consolidated"])
        return totals

    # --------------------------------------------------------- client requests
    def deduplicate(
        self,
        caller: Caller,
        agent_id: Any,
        *,
        threshold: Any = None,
        memory_type: Any = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """``POST /v1/knowledge/deduplicate``: report or fold one agent's duplicates."""
        agent_id = check_agent_id(agent_id)
        params: dict[str, Any] = {"agent_id": agent_id, "dry_run": bool(dry_run)}
        if threshold is not None:
            params["threshold"] = check_importance(threshold, "threshold")
        if memory_type is not None:
            if not isinstance(memory_type, str) or memory_type.lower() not in MEMORY_TYPES:
                raise InvalidInput(f"'memory_type' must be one of {', '.join(MEMORY_TYPES)}")
            params["memory_type"] = memory_type.lower()
        if not caller.can_see_agent(agent_id) or self.memories.agent(caller, agent_id) is None:
            return self.dedup_empty()
        return self._result("dedup", params)

    @staticmethod
    def dedup_empty() -> dict[str, Any]:
        """The answer for an agent with nothing to deduplicate."""
        return {
            "duplicates_found": 0,
            "duplicates_merged": 0,
            "duplicates_skipped_changed": 0,
            "removed_count": 0,
            "groups": [],
            "memories_scanned": 0,
        }

    def consolidate_agent(self, caller: Caller, agent_id: str) -> dict[str, Any]:
        """``POST /v1/agents/{id}/consolidate``: one DBSCAN pass over the agent."""
        if not caller.can_see_agent(agent_id):
            return self.consolidator.consolidate_agent(caller, agent_id, _NO_CONTEXT)
        return self._result("consolidation", {"agent_id": agent_id})

    def compress(self, caller: Caller, agent_id: str) -> dict[str, Any]:
        """``POST /v1/agents/{id}/compress``: summarise the agent's clusters."""
        if not caller.can_see_agent(agent_id):
            return self.compressor.compress(caller, agent_id, _NO_CONTEXT)
        return self._result("compression", {"agent_id": agent_id})

    def trigger(self, action: Any) -> dict[str, Any]:
        """``POST /v1/admin/autopilot/trigger``: run passes now and answer what they did."""
        if not isinstance(action, str) or action.lower() not in TRIGGER_ACTIONS:
            raise InvalidInput(f"'action' must be one of {', '.join(TRIGGER_ACTIONS)}")
        action = action.lower()
        answer: dict[str, Any] = {"success": True, "action": action}
        done = []
        if action in ("dedup", "all"):
            result = self._result("dedup", {})
            answer["dedup"] = result
            done.append(f"dedup ({result.get('mode')}) removed {result['duplicates_removed']}")
        if action in ("consolidate", "all"):
            result = self._result("consolidation", {})
            answer["consolidation"] = result
            done.append(f"consolidation merged {result['memories_consolidated']}")
        if action == "decay":
            answer["decay"] = self._result("decay", {})
            done.append("decay cycle ran")
        if action == "ttl":
            answer["ttl"] = self._result("ttl_sweep", {})
            done.append("ttl sweep ran")
        answer["message"] = "; ".join(done)
        return answer

    def ttl_cleanup(self, namespace: Any = None) -> dict[str, Any]:
        """``POST /v1/admin/ttl/cleanup``: purge expired memories now."""
        if namespace is not None and not isinstance(namespace, str):
            raise InvalidInput("'namespace' must be a string")
        result = self._result("ttl_sweep", {"namespace": namespace})
        removed = int(result.get("memories_removed", 0))
        return {
            "success": True,
            "vectors_removed": removed,
            "namespaces_cleaned": result.get("namespaces_cleaned", []),
            "message": f"removed {removed} expired memories",
        }


class _NoContext(JobContext):
    """For passes over nothing (an invisible agent): no job, no throttling."""

    def __init__(self) -> None:
        pass

    def progress(self, processed: int, total: int | None = None) -> None:
        return None

    def note(self, **result: Any) -> None:
        return None

    def checkpoint(self) -> None:
        return None


_NO_CONTEXT = _NoContext()
