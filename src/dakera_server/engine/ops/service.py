"""``Operations``: the ops domain as one object on ``Engine.ops``.

It owns the metrics registry and its history, the slow-query log, quotas (and installs their
check in the memory and vector write paths), runtime configuration, maintenance mode, index
upkeep, routing and analytics. ``load`` restores persisted state and starts the snapshot
thread; ``close`` stops it after one last snapshot, so a clean shutdown loses no count.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from dakera_server.config import Settings
from dakera_server.config.table import SETTINGS
from dakera_server.engine.access import agent_namespace
from dakera_server.engine.events.bus import Event, EventBus
from dakera_server.engine.graph.knowledge_graph import KnowledgeGraph
from dakera_server.engine.lifecycle.core import Lifecycle
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.sessions import SessionEngine
from dakera_server.engine.ops.analytics import Analytics
from dakera_server.engine.ops.cluster import Cluster, Maintenance
from dakera_server.engine.ops.history import MetricsHistory
from dakera_server.engine.ops.inventory import Inventory
from dakera_server.engine.ops.metrics import MetricsRegistry
from dakera_server.engine.ops.quotas import QuotaBook
from dakera_server.engine.ops.routing import Router
from dakera_server.engine.ops.runtime import Knob, RuntimeConfig, bool_knob, number_knob
from dakera_server.engine.ops.slowlog import MAX_ENTRIES_LIMIT, SlowQueryLog
from dakera_server.engine.ops.upkeep import Upkeep
from dakera_server.engine.vectors.engine import NamespaceEngine
from dakera_server.errors import DakeraError, InvalidInput
from dakera_server.storage.base import Store

__all__ = ["Operations"]

logger = logging.getLogger("dakera_server.ops")
LOG_LEVELS = ("debug", "info", "warning", "error")


def _discard(_value: Any) -> None:
    return None


class Operations:
    """Every part of the ops domain (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        events: EventBus,
        *,
        memories: MemoryEngine,
        namespaces: NamespaceEngine,
        sessions: SessionEngine,
        graph: KnowledgeGraph,
        lifecycle: Lifecycle,
        version: str,
        started_at: float,
        clock: Callable[[], float],
        encrypted: bool,
    ) -> None:
        self.settings = settings
        self.metrics = MetricsRegistry()
        self.history = MetricsHistory(
            store, self.metrics, interval=settings.metrics_snapshot_secs, clock=clock
        )
        self.slowlog = SlowQueryLog(
            threshold_ms=float(settings.slow_query_threshold_ms),
            keep_text=not encrypted,
            clock=clock,
        )
        self.inventory = Inventory(memories, namespaces)
        self.quotas = QuotaBook(store, events, self.inventory.usage, self.inventory.names)
        self.quotas.known_ids = self.inventory.known_ids
        memories.admit = self.quotas.admit
        namespaces.admit = self.quotas.admit
        self.analytics = Analytics(
            self.history,
            self.inventory,
            store,
            memories,
            sessions,
            started_at=started_at,
            clock=clock,
        )
        self.upkeep = Upkeep(store, memories, namespaces, graph, lifecycle.jobs, self.inventory)
        self.router = Router(memories, namespaces)
        self.maintenance = Maintenance(store, events, clock)
        self.cluster = Cluster(version, started_at, clock)
        self.lifecycle = lifecycle
        self.runtime = RuntimeConfig(
            store,
            events,
            self._knobs(sessions, graph, lifecycle),
            {s.attr: s.env for s in SETTINGS},
        )
        events.add_sink(self._count_records)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _knobs(
        self, sessions: SessionEngine, graph: KnowledgeGraph, lifecycle: Lifecycle
    ) -> list[Knob]:
        autopilot, slowlog = lifecycle.autopilot, self.slowlog

        def set_level(level: Any) -> None:
            logging.getLogger("dakera_server").setLevel(str(level).upper())

        def check_level(value: Any) -> Any:
            if not isinstance(value, str) or value.lower() not in LOG_LEVELS:
                raise InvalidInput(f"'log_level' must be one of {', '.join(LOG_LEVELS)}")
            return value.lower()

        level = {"value": self.settings.log_level}

        def apply_level(value: Any) -> None:
            level["value"] = value
            set_level(value)

        return [
            number_knob(
                "session_idle_timeout_secs",
                "Idle seconds after which sessions started from now on end (0 = never).",
                lambda: sessions.idle_timeout_secs,
                lambda v: setattr(sessions, "idle_timeout_secs", v),
                low=0,
                high=2_592_000,
            ),
            number_knob(
                "decay_interval_secs",
                "Seconds between decay cycles (0 = only on demand).",
                lambda: autopilot.decay_interval_secs,
                lambda v: setattr(autopilot, "decay_interval_secs", v),
                low=0,
                high=31_536_000,
            ),
            number_knob(
                "ttl_sweep_interval_secs",
                "Seconds between TTL sweeps (0 = only on demand).",
                lambda: autopilot.ttl_interval_secs,
                lambda v: setattr(autopilot, "ttl_interval_secs", v),
                low=0,
                high=31_536_000,
            ),
            bool_knob(
                "autopilot_enabled",
                "AutoPilot background dedup/consolidation (kept in the AutoPilot configuration).",
                lambda: autopilot.config.enabled,
                lambda v: _discard(autopilot.update_config({"enabled": v})),
                persist=False,
            ),
            number_knob(
                "background_cpu_percent",
                "Share of one core a background lifecycle pass may use.",
                lambda: round(lifecycle.jobs.cpu_share * 100),
                lambda v: setattr(lifecycle.jobs, "cpu_share", v / 100.0),
                low=1,
                high=100,
            ),
            number_knob(
                "graph_similarity_threshold",
                "Cosine similarity from which a stored memory gets a related_to edge.",
                lambda: graph.similarity_threshold,
                lambda v: setattr(graph, "similarity_threshold", v),
                low=0.0,
                high=1.0,
                integer=False,
            ),
            number_knob(
                "slow_query_threshold_ms",
                "Searches, recalls and queries at least this slow enter the slow-query log.",
                lambda: slowlog.threshold_ms,
                lambda v: setattr(slowlog, "threshold_ms", v),
                low=0.0,
                high=3_600_000.0,
                integer=False,
            ),
            number_knob(
                "slow_query_max_entries",
                "How many entries the slow-query log keeps (the newest).",
                lambda: slowlog.max_entries,
                slowlog.resize,
                low=1,
                high=MAX_ENTRIES_LIMIT,
            ),
            bool_knob(
                "slow_query_log_enabled",
                "Whether slow queries are recorded at all.",
                lambda: slowlog.enabled,
                lambda v: setattr(slowlog, "enabled", v),
            ),
            Knob(
                "log_level",
                "Server log level: debug, info, warning or error.",
                check_level,
                lambda: level["value"],
                apply_level,
            ),
        ]

    def _count_records(self, event: Event) -> None:
        if event.event_type == "stored" and event.agent_id:
            self.metrics.count_records(agent_namespace(event.agent_id), 1)
        elif event.event_type == "vectors_mutated" and event.namespace:
            if event.details.get("op") == "upserted":
                self.metrics.count_records(event.namespace, int(event.details.get("count", 0)))

    # ------------------------------------------------------------------ process
    def load(self) -> None:
        """Restore counters, quotas, maintenance and runtime overrides; start snapshots."""
        self.history.load()
        self.quotas.load()
        self.maintenance.load()
        applied = self.runtime.load()
        if applied:
            logger.info("applied %d runtime configuration override(s)", applied)
        if self.history.interval > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="dakera-metrics", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.history.interval):
            try:
                self.history.snapshot()
            except (DakeraError, OSError):  # a store hiccup: log it, keep counting
                logger.exception("writing a metrics snapshot failed; will retry")

    def close(self) -> None:
        """Stop the snapshot thread and persist the counters one last time."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.history.snapshot()
