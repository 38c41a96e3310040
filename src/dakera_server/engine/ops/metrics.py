"""Request counters and latency histograms: the one registry behind analytics, KPIs and
Prometheus.

The request path calls ``observe`` once per HTTP request, on the event-loop thread; it does a
dict lookup, a few integer additions and one ``bisect`` (0.7 CPU µs, ``bench/metrics_path.py``),
so counting never shows in a request's latency. Quantiles are read from the histogram buckets
(linear interpolation inside the bucket, as Prometheus' ``histogram_quantile`` does), never from
stored samples: memory and read cost do not grow with traffic.

Writers: the event loop (``observe``) and, for record counts, request worker threads
(``count_records``, under a lock). Readers (analytics, snapshots) copy under no lock: a copy
taken while a request is being counted may be one request behind, never corrupt.

Namespace labels come from clients, so their number is capped (``MAX_NAMESPACES``); traffic of
namespaces past the cap is counted under ``OTHER``.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from typing import Any

from dakera_server.engine.ops.stats import Stats, total_of

__all__ = [
    "MAX_NAMESPACES",
    "OTHER",
    "MetricsRegistry",
    "MetricsState",
    "RouteKind",
    "route_kind",
]

MAX_NAMESPACES = 1000
OTHER = "_other"

RouteKind = str  # "store", "recall", "query" or "" (anything else)

# Route templates whose requests are memory recalls/searches, vector queries or writes.
_RECALL = frozenset(
    {
        "/v1/memory/recall",
        "/v1/memory/search",
        "/v1/memories/recall/batch",
    }
)
_STORE = frozenset({"/v1/memory/store", "/v1/memories/store/batch"})
_NAMESPACE_QUERY = frozenset(
    {
        "query",
        "query-text",
        "batch-query",
        "batch-query-text",
        "fulltext/search",
        "hybrid",
        "multi-vector",
        "unified-query",
    }
)
_NAMESPACE_STORE = frozenset({"vectors", "upsert-text", "upsert-columns", "fulltext/index"})
_NAMESPACE_PREFIX = "/v1/namespaces/{namespace}/"


# gRPC calls (counted by ``grpc/servicer.py`` as method ``GRPC``) that query or write vectors.
_GRPC_KINDS: dict[str, RouteKind] = {
    "/dakera.v1.VectorService/Query": "query",
    "/dakera.v1.VectorService/Upsert": "store",
}


def route_kind(method: str, template: str) -> RouteKind:
    """What a route does, for the store/recall rates and the slow-query log."""
    if method == "GRPC":
        return _GRPC_KINDS.get(template, "")
    if method != "POST":
        return ""
    if template in _RECALL:
        return "recall"
    if template in _STORE:
        return "store"
    if template.startswith(_NAMESPACE_PREFIX):
        rest = template[len(_NAMESPACE_PREFIX) :]
        if rest in _NAMESPACE_QUERY:
            return "query"
        if rest in _NAMESPACE_STORE:
            return "store"
    return ""


class MetricsRegistry:
    """Cumulative counters since the data directory was created (restored from snapshots).

    ``routes`` is keyed by ``"METHOD template"`` (``POST /v1/memory/recall``); ``namespaces`` by
    namespace name (agent memories count under ``_dakera_agent_<id>``).
    """

    def __init__(self, max_namespaces: int = MAX_NAMESPACES) -> None:
        self.routes: dict[str, Stats] = {}
        self.namespaces: dict[str, Stats] = {}
        self.kinds: dict[str, RouteKind] = {}
        self.max_namespaces = max_namespaces
        self.in_flight = 0  # requests being answered now (the metering layer keeps it)
        self.records_total = 0  # records written, all namespaces
        self.records_agents = 0  # of which agent memories
        self._records_lock = threading.Lock()
        self._observe_lock = threading.Lock()

    def observe(
        self,
        method: str,
        template: str,
        status: int,
        ms: float,
        namespace: str | None = None,
        bytes_in: int = 0,
        bytes_out: int = 0,
    ) -> RouteKind:
        """Count one request (hot path); returns the route's kind.

        REST requests are counted on the event loop's thread and gRPC calls on gRPC's worker
        threads, so the read-modify-write of the counters is under a lock (uncontended, ~0.1 µs).
        """
        with self._observe_lock:
            return self._observe(method, template, status, ms, namespace, bytes_in, bytes_out)

    def _observe(
        self,
        method: str,
        template: str,
        status: int,
        ms: float,
        namespace: str | None,
        bytes_in: int,
        bytes_out: int,
    ) -> RouteKind:
        key = method + " " + template
        stats = self.routes.get(key)
        if stats is None:
            stats = self.routes[key] = Stats()
            self.kinds[key] = route_kind(method, template)
        kind = self.kinds[key]
        stats.requests += 1
        stats.bytes_in += bytes_in
        stats.bytes_out += bytes_out
        stats.latency.observe(ms)
        if status >= 500:
            stats.errors_5xx += 1
        elif status >= 400:
            stats.errors_4xx += 1
        elif kind == "store":
            stats.stores += 1
        elif kind:
            stats.recalls += 1
        if namespace is None:
            return kind
        named = self.namespaces.get(namespace)
        if status >= 400:
            # Refused requests never create a label (clients choose names), but they count
            # against a namespace already known.
            if named is not None:
                named.requests += 1
                named.latency.observe(ms)
                if status >= 500:
                    named.errors_5xx += 1
                else:
                    named.errors_4xx += 1
            return kind
        if named is None:
            if len(self.namespaces) >= self.max_namespaces:
                namespace = OTHER
            named = self.namespaces.setdefault(namespace, Stats())
        named.requests += 1
        named.bytes_in += bytes_in
        named.bytes_out += bytes_out
        named.latency.observe(ms)
        if kind == "store":
            named.stores += 1
        elif kind:
            named.recalls += 1
        return kind

    def count_records(self, namespace: str, count: int) -> None:
        """Records written to ``namespace`` (called from request threads by the event sink)."""
        if count <= 0:
            return
        with self._records_lock:
            self.records_total += count
            if namespace.startswith("_dakera_agent_"):
                self.records_agents += count
            named = self.namespaces.get(namespace)
            if named is None:
                if len(self.namespaces) >= self.max_namespaces:
                    namespace = OTHER
                named = self.namespaces.setdefault(namespace, Stats())
            named.records += count

    # ------------------------------------------------------------------ reading
    def snapshot(self, namespaces: Collection[str] | None = None) -> MetricsState:
        """An independent copy of every route's counters and of the namespaces named (all of
        them when ``namespaces`` is ``None``: reading one namespace need not copy a thousand)."""
        if namespaces is None:
            named = {k: v.copy() for k, v in list(self.namespaces.items())}
        else:
            named = {k: v.copy() for k in namespaces if (v := self.namespaces.get(k)) is not None}
        state = MetricsState(
            {k: v.copy() for k, v in list(self.routes.items())}, named, dict(self.kinds)
        )
        state.records_total, state.records_agents = self.records_total, self.records_agents
        return state

    def restore(self, state: MetricsState) -> None:
        """Continue counting from ``state`` (start-up: the last persisted snapshot)."""
        for key, stats in state.routes.items():
            self.routes.setdefault(key, Stats()).add(stats)
            method, _, template = key.partition(" ")
            self.kinds[key] = route_kind(method, template)
        for name, stats in state.namespaces.items():
            self.namespaces.setdefault(name, Stats()).add(stats)
        self.records_total += state.records_total
        self.records_agents += state.records_agents


class MetricsState:
    """A frozen copy of the registry (now, or as of a snapshot), and differences of two."""

    def __init__(
        self,
        routes: dict[str, Stats],
        namespaces: dict[str, Stats],
        kinds: dict[str, RouteKind] | None = None,
    ) -> None:
        self.routes = routes
        self.namespaces = namespaces
        self.kinds = kinds if kinds is not None else {}
        self.records_total = sum(v.records for v in namespaces.values())
        self.records_agents = sum(
            v.records for k, v in namespaces.items() if k.startswith("_dakera_agent_")
        )
        for key in routes:
            if key not in self.kinds:
                method, _, template = key.partition(" ")
                self.kinds[key] = route_kind(method, template)

    def minus(self, base: MetricsState | None) -> MetricsState:
        """What was counted between ``base`` and this state."""
        if base is None:
            return self
        state = MetricsState(
            {k: v.minus(base.routes.get(k)) for k, v in self.routes.items()},
            {k: v.minus(base.namespaces.get(k)) for k, v in self.namespaces.items()},
            self.kinds,
        )
        restarted = base.records_total > self.records_total
        state.records_total = self.records_total - (0 if restarted else base.records_total)
        state.records_agents = max(
            0, self.records_agents - (0 if restarted else base.records_agents)
        )
        return state

    def total(self) -> Stats:
        """Every route together."""
        return total_of(self.routes.values())

    def of_kind(self, *kinds: RouteKind) -> Stats:
        """Routes of these kinds together."""
        return total_of(v for k, v in self.routes.items() if self.kinds.get(k) in kinds)

    def route(self, key: str) -> Stats:
        """One route's counters (zero when never called)."""
        return self.routes.get(key) or Stats()

    def to_wire(self) -> dict[str, Any]:
        """JSON form for snapshots."""
        return {
            "records": [self.records_total, self.records_agents],
            "routes": {k: v.to_wire() for k, v in self.routes.items() if v.requests},
            "namespaces": {
                k: v.to_wire() for k, v in self.namespaces.items() if v.requests or v.records
            },
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> MetricsState:
        """Inverse of ``to_wire``."""
        state = cls(
            {k: Stats.from_wire(v) for k, v in dict(data.get("routes") or {}).items()},
            {k: Stats.from_wire(v) for k, v in dict(data.get("namespaces") or {}).items()},
        )
        records = data.get("records")
        if isinstance(records, list) and len(records) == 2:
            state.records_total, state.records_agents = int(records[0]), int(records[1])
        return state
