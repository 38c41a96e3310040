"""Analytics and KPIs, computed from the counters and their history (never from samples).

A period is the counters now minus the newest snapshot at or before its start
(``MetricsHistory.window``); ``window_seconds`` says how much time the answer really covers
(less than the period while the server's history is younger). With ``namespace`` the answer
is that namespace's traffic; without, the whole server's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from dakera_server.engine.access import AGENT_NAMESPACE_PREFIX
from dakera_server.engine.lifecycle.state import SYSTEM
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.sessions import SessionEngine
from dakera_server.engine.ops.history import MetricsHistory, parse_period
from dakera_server.engine.ops.inventory import Inventory
from dakera_server.engine.ops.metrics import MetricsState
from dakera_server.engine.ops.stats import Stats
from dakera_server.errors import InvalidInput
from dakera_server.storage.base import Store

__all__ = ["Analytics"]

KPI_LATENCY_SECONDS = 60
DAY = 86400
CROSS_AGENT_NODES_PER_AGENT = 50  # the cross-agent network's default max_nodes_per_agent
RECALL_ROUTE = "POST /v1/memory/recall"
STORE_ROUTE = "POST /v1/memory/store"


def _ms(value: float) -> float:
    return round(value, 3)


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 4) if seconds > 0 else 0.0


class Analytics:
    """The answers of ``/v1/analytics/*`` and ``/v1/kpis``."""

    def __init__(
        self,
        history: MetricsHistory,
        inventory: Inventory,
        store: Store,
        memories: MemoryEngine,
        sessions: SessionEngine,
        *,
        started_at: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.history = history
        self.inventory = inventory
        self.store = store
        self.memories = memories
        self.sessions = sessions
        self.started_at = started_at
        self.clock = clock

    def _window(self, period: str | None, namespace: str | None) -> tuple[str, MetricsState, float]:
        try:
            label, seconds = parse_period(period)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        state, covered = self.history.window(seconds, () if namespace is None else (namespace,))
        return label, state, min(covered, float(seconds))

    @staticmethod
    def _scope(state: MetricsState, namespace: str | None) -> tuple[Stats, Stats, Stats]:
        """(all requests, queries, writes) of the server or of one namespace."""
        if namespace is None:
            return state.total(), state.of_kind("recall", "query"), state.of_kind("store")
        named = state.namespaces.get(namespace) or Stats()
        queries, writes = Stats(), Stats()
        queries.requests, writes.requests = named.recalls, named.stores
        return named, queries, writes

    def overview(self, period: str | None = None, namespace: str | None = None) -> dict[str, Any]:
        """Query counts, latency, rates, errors and storage of a period."""
        label, state, seconds = self._window(period, namespace)
        total, queries, writes = self._scope(state, namespace)
        facts = self.inventory.all()
        if namespace is not None:
            facts = [f for f in facts if f.name == namespace]
        errors = total.errors_4xx + total.errors_5xx
        disk = self.store.disk_usage() or {}
        latency = total.latency
        return {
            "period": label,
            "namespace": namespace,
            "window_seconds": round(seconds, 3),
            "total_requests": total.requests,
            "total_queries": queries.requests,
            "total_upserts": writes.requests,
            "records_written": total.records if namespace is not None else state.records_total,
            "avg_latency_ms": _ms(latency.mean_ms),
            "p50_latency_ms": _ms(latency.quantile(0.50)),
            "p95_latency_ms": _ms(latency.quantile(0.95)),
            "p99_latency_ms": _ms(latency.quantile(0.99)),
            "queries_per_second": _rate(queries.requests, seconds),
            "upserts_per_second": _rate(writes.requests, seconds),
            "error_rate": round(errors / total.requests, 6) if total.requests else 0.0,
            "error_rate_5xx": round(total.errors_5xx / total.requests, 6)
            if total.requests
            else 0.0,
            "cache_hit_rate": 0.0,  # no query cache: every index is held in memory
            "cache_enabled": False,
            "storage_used_bytes": disk.get("total", 0)
            if namespace is None
            else sum(f.vector_bytes for f in facts),
            "total_vectors": sum(f.vectors for f in facts),
            "total_records": sum(f.records for f in facts),
            "total_namespaces": len(facts),
            "uptime_seconds": int(self.clock() - self.started_at),
        }

    def latency(self, period: str | None = None, namespace: str | None = None) -> dict[str, Any]:
        """Latency quantiles of a period, overall and by operation kind and route."""
        label, state, seconds = self._window(period, namespace)
        total, _, _ = self._scope(state, namespace)
        hist = total.latency
        by_operation: dict[str, Any] = {}
        by_route: dict[str, Any] = {}
        if namespace is None:
            for kind, name in (("recall", "recall"), ("query", "query"), ("store", "store")):
                part = state.of_kind(kind).latency
                if part.count:
                    by_operation[name] = {
                        "avg_ms": _ms(part.mean_ms),
                        "p50_ms": _ms(part.quantile(0.5)),
                        "p95_ms": _ms(part.quantile(0.95)),
                        "p99_ms": _ms(part.quantile(0.99)),
                        "count": part.count,
                    }
            busiest = sorted(state.routes.items(), key=lambda kv: -kv[1].requests)[:20]
            for key, stats in busiest:
                if stats.requests:
                    by_route[key] = {
                        "count": stats.requests,
                        "avg_ms": _ms(stats.latency.mean_ms),
                        "p50_ms": _ms(stats.latency.quantile(0.5)),
                        "p95_ms": _ms(stats.latency.quantile(0.95)),
                        "p99_ms": _ms(stats.latency.quantile(0.99)),
                    }
        return {
            "period": label,
            "namespace": namespace,
            "window_seconds": round(seconds, 3),
            "count": hist.count,
            "avg_ms": _ms(hist.mean_ms),
            "p50_ms": _ms(hist.quantile(0.50)),
            "p95_ms": _ms(hist.quantile(0.95)),
            "p99_ms": _ms(hist.quantile(0.99)),
            "max_ms": _ms(hist.highest_ms()),
            "by_operation": by_operation,
            "by_route": by_route,
        }

    def throughput(self, period: str | None = None, namespace: str | None = None) -> dict[str, Any]:
        """Request, query, write and byte rates of a period."""
        label, state, seconds = self._window(period, namespace)
        total, queries, writes = self._scope(state, namespace)
        by_operation = {"query": queries.requests, "upsert": writes.requests}
        return {
            "period": label,
            "namespace": namespace,
            "window_seconds": round(seconds, 3),
            "total_operations": total.requests,
            "operations_per_second": _rate(total.requests, seconds),
            "requests_per_second": _rate(total.requests, seconds),
            "queries_per_second": _rate(queries.requests, seconds),
            "upserts_per_second": _rate(writes.requests, seconds),
            "records_per_second": _rate(
                total.records if namespace is not None else state.records_total, seconds
            ),
            "bytes_per_second": _rate(total.bytes_in + total.bytes_out, seconds),
            "bytes_in": total.bytes_in,
            "bytes_out": total.bytes_out,
            "by_operation": by_operation,
        }

    def storage(self, namespace: str | None = None) -> dict[str, Any]:
        """Bytes on disk and held per namespace (vector bytes are estimates, see inventory)."""
        facts = self.inventory.all()
        if namespace is not None:
            facts = [f for f in facts if f.name == namespace]
        vector_bytes = sum(f.vector_bytes for f in facts)
        index_bytes = sum(f.index_bytes for f in facts)
        by_namespace = {
            f.name: {
                "bytes": f.vector_bytes,
                "vector_bytes": f.vector_bytes,
                "index_bytes": f.index_bytes,
                "vector_count": f.vectors,
                "records": f.records,
                "kind": f.kind,
            }
            for f in facts
        }
        answer: dict[str, Any] = {
            "namespace": namespace,
            "vector_bytes": vector_bytes,
            "index_bytes": index_bytes,
            "by_namespace": by_namespace,
        }
        if namespace is None:
            disk = self.store.disk_usage() or {}
            total = int(disk.get("total", vector_bytes))
            answer.update(
                total_bytes=total,
                data_bytes=total,
                metadata_bytes=max(0, int(disk.get("database", total)) - vector_bytes),
                disk=disk,
            )
        else:
            answer.update(
                total_bytes=vector_bytes,
                data_bytes=vector_bytes,
                metadata_bytes=0,
                unavailable=[
                    {
                        "namespace": namespace,
                        "reason": "one store file holds every namespace: only its vector "
                        "bytes are counted per namespace",
                    }
                ],
            )
        return answer

    def kpis(self) -> dict[str, Any]:
        """The eight product KPIs (latencies over the last one to two minutes, see history)."""
        now = self.clock()
        recent, _ = self.history.window(KPI_LATENCY_SECONDS, ())
        recall = recent.route(RECALL_ROUTE).latency
        store = recent.route(STORE_ROUTE).latency
        total = recent.total()
        active = self.history.active_since(DAY, AGENT_NAMESPACE_PREFIX)
        week_start = now - 7 * DAY
        sessions = sum(1 for s in self.sessions.list_for(SYSTEM) if s.started_at >= week_start)
        nodes = 0
        for agent_id in self.memories.agent_ids(SYSTEM):
            agent = self.memories.agent(SYSTEM, agent_id)
            if agent is not None:
                nodes += min(CROSS_AGENT_NODES_PER_AGENT, len(self.memories.live(agent)))
        retention, cohort = self._retention(now)
        return {
            "recall_latency_p50_ms": _ms(recall.quantile(0.5)),
            "recall_latency_p99_ms": _ms(recall.quantile(0.99)),
            "store_latency_p50_ms": _ms(store.quantile(0.5)),
            "api_error_rate_5xx_pct": round(100.0 * total.errors_5xx / total.requests, 4)
            if total.requests
            else 0.0,
            "active_agents_count": active,
            "session_count_week": sessions,
            "cross_agent_network_node_count": nodes,
            "memory_retention_7d_pct": retention,
            "memory_retention_7d_cohort": cohort,
            "timestamp": int(now),
        }

    def _retention(self, now: float) -> tuple[float, int]:
        """Of the memories stored between 8 and 7 days ago, the percentage still held
        (and how many were stored); 0.0 when none were."""
        start, end = now - 8 * DAY, now - 7 * DAY
        before, after = self.history.at(start), self.history.at(end)
        if after is None:
            return 0.0, 0
        if before is None:  # history starts inside the cohort's day: count from its start
            start = float(self.history.origin)
        stored = after.records_agents - (0 if before is None else before.records_agents)
        if stored <= 0:
            return 0.0, 0
        alive = 0
        for agent_id in self.memories.agent_ids(SYSTEM):
            agent = self.memories.agent(SYSTEM, agent_id)
            if agent is not None:
                alive += sum(1 for m in self.memories.live(agent) if start <= m.created_at < end)
        return round(min(100.0, 100.0 * alive / stored), 3), stored
