"""The slow-query log: searches, recalls and queries slower than a threshold, newest first.

An entry records what helps find the cause — route, namespace, duration, ``top_k``, the
*shape* of the filter (field names and operators; values replaced by their JSON type), result
status — and never a vector. The query text is kept (cut to ``QUERY_PREVIEW_CHARS``) only
when the server runs without encryption at rest: with it, the log must not become a plaintext
copy of what the data directory encrypts.

The log is a bounded ring in memory (``max_entries``); its settings are runtime configuration
(``engine/ops/runtime.py``) and survive a restart, the entries do not.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["QUERY_PREVIEW_CHARS", "SlowQuery", "SlowQueryLog", "filter_shape"]

QUERY_PREVIEW_CHARS = 200
MAX_SHAPE_DEPTH = 6
MAX_SHAPE_KEYS = 32
DEFAULT_THRESHOLD_MS = 500.0
DEFAULT_MAX_ENTRIES = 1000
MAX_ENTRIES_LIMIT = 100_000

# Body fields that narrow a memory recall/search (they are shown by shape, like a filter).
MEMORY_FILTER_FIELDS = (
    "memory_type",
    "min_importance",
    "tags",
    "session_id",
    "since",
    "until",
    "filter",
)


def filter_shape(value: Any, depth: int = 0) -> Any:
    """``value`` with every leaf replaced by its JSON type name; containers kept (bounded)."""
    if depth >= MAX_SHAPE_DEPTH:
        return "..."
    if isinstance(value, Mapping):
        items = list(value.items())[:MAX_SHAPE_KEYS]
        return {str(k): filter_shape(v, depth + 1) for k, v in items}
    if isinstance(value, list):
        return [filter_shape(value[0], depth + 1)] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null"


@dataclass
class SlowQuery:
    """One slow request."""

    id: str
    timestamp: int  # Unix seconds
    route: str
    method: str
    query_type: str
    namespace: str | None
    duration_ms: float
    status: int
    top_k: int | None = None
    filter_shape: Any = None
    query_text: str | None = None
    vector_dimension: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """The entry as ``GET /v1/admin/slow-queries`` lists it."""
        parameters: dict[str, Any] = {"top_k": self.top_k, "filter": self.filter_shape}
        if self.vector_dimension is not None:
            parameters["vector_dimension"] = self.vector_dimension
        if self.query_text is not None:
            parameters["query"] = self.query_text
        return {
            "id": self.id,
            "timestamp": self.timestamp,
            "route": self.route,
            "method": self.method,
            "query_type": self.query_type,
            "namespace": self.namespace or "",
            "duration_ms": round(self.duration_ms, 3),
            "status": self.status,
            "top_k": self.top_k,
            "filter_shape": self.filter_shape,
            "parameters": parameters,
        }


def describe_body(body: Any, *, keep_text: bool) -> dict[str, Any]:
    """``top_k``, filter shape, vector dimension and (optionally) query text of a request body."""
    if not isinstance(body, Mapping):
        return {}
    out: dict[str, Any] = {}
    top_k = body.get("top_k", body.get("limit"))
    if isinstance(top_k, int) and not isinstance(top_k, bool):
        out["top_k"] = top_k
    narrowing = {k: body[k] for k in MEMORY_FILTER_FIELDS if body.get(k) is not None}
    if narrowing:
        out["filter_shape"] = filter_shape(
            narrowing["filter"] if set(narrowing) == {"filter"} else narrowing
        )
    vector = body.get("vector")
    if isinstance(vector, list):
        out["vector_dimension"] = len(vector)
    if keep_text:
        for name in ("query", "text", "query_text"):
            text = body.get(name)
            if isinstance(text, str):
                out["query_text"] = text[:QUERY_PREVIEW_CHARS]
                break
    return out


class SlowQueryLog:
    """A bounded, thread-safe ring of ``SlowQuery`` entries."""

    def __init__(
        self,
        *,
        threshold_ms: float = DEFAULT_THRESHOLD_MS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        keep_text: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.threshold_ms = threshold_ms
        self.keep_text = keep_text
        self.clock = clock
        self.enabled = True
        self._entries: deque[SlowQuery] = deque(maxlen=max_entries)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.recorded_total = 0

    @property
    def max_entries(self) -> int:
        """How many entries the ring keeps."""
        return self._entries.maxlen or 0

    def resize(self, max_entries: int) -> None:
        """Keep at most ``max_entries`` (the newest ones stay)."""
        with self._lock:
            self._entries = deque(self._entries, maxlen=max_entries)

    def is_slow(self, duration_ms: float) -> bool:
        """Whether a request this long belongs in the log (checked on the hot path)."""
        return self.enabled and duration_ms >= self.threshold_ms

    def record(
        self,
        *,
        route: str,
        method: str,
        query_type: str,
        namespace: str | None,
        duration_ms: float,
        status: int,
        body: Any = None,
    ) -> SlowQuery:
        """Add one slow request; ``body`` is the parsed JSON request (only its shape is kept)."""
        details = describe_body(body, keep_text=self.keep_text)
        entry = SlowQuery(
            id=f"sq_{next(self._ids)}_{int(self.clock() * 1000)}",
            timestamp=int(self.clock()),
            route=route,
            method=method,
            query_type=query_type,
            namespace=namespace,
            duration_ms=duration_ms,
            status=status,
            top_k=details.get("top_k"),
            filter_shape=details.get("filter_shape"),
            query_text=details.get("query_text"),
            vector_dimension=details.get("vector_dimension"),
        )
        with self._lock:
            self._entries.appendleft(entry)
            self.recorded_total += 1
        return entry

    def entries(
        self,
        *,
        namespace: str | None = None,
        query_type: str | None = None,
        min_duration_ms: float | None = None,
        limit: int | None = None,
    ) -> list[SlowQuery]:
        """Entries newest first, filtered."""
        with self._lock:
            found = list(self._entries)
        if namespace is not None:
            found = [e for e in found if e.namespace == namespace]
        if query_type is not None:
            found = [e for e in found if e.query_type == query_type]
        if min_duration_ms is not None:
            found = [e for e in found if e.duration_ms >= min_duration_ms]
        return found if limit is None else found[:limit]

    def clear(self, namespace: str | None = None) -> int:
        """Drop entries (of one namespace, or all); returns how many."""
        with self._lock:
            before = len(self._entries)
            if namespace is None:
                self._entries.clear()
            else:
                kept = [e for e in self._entries if e.namespace != namespace]
                self._entries = deque(kept, maxlen=self._entries.maxlen)
            return before - len(self._entries)

    def summary(self) -> dict[str, Any]:
        """Counts and durations by query type and namespace, and the slowest entries."""
        entries = self.entries()
        by_type: dict[str, dict[str, Any]] = {}
        by_namespace: dict[str, int] = {}
        for entry in entries:
            group = by_type.setdefault(
                entry.query_type, {"count": 0, "total_ms": 0.0, "max_ms": 0.0}
            )
            group["count"] += 1
            group["total_ms"] += entry.duration_ms
            group["max_ms"] = max(group["max_ms"], entry.duration_ms)
            key = entry.namespace or ""
            by_namespace[key] = by_namespace.get(key, 0) + 1
        for group in by_type.values():
            group["avg_ms"] = round(group.pop("total_ms") / group["count"], 3)
            group["max_ms"] = round(group["max_ms"], 3)
        durations = [e.duration_ms for e in entries]
        slowest = sorted(entries, key=lambda e: -e.duration_ms)[:5]
        return {
            "total": len(entries),
            "recorded_total": self.recorded_total,
            "threshold_ms": self.threshold_ms,
            "max_entries": self.max_entries,
            "avg_duration_ms": round(sum(durations) / len(durations), 3) if durations else 0.0,
            "max_duration_ms": round(max(durations), 3) if durations else 0.0,
            "by_query_type": by_type,
            "by_namespace": dict(sorted(by_namespace.items(), key=lambda kv: -kv[1])),
            "slowest": [e.to_wire() for e in slowest],
        }

    def config(self) -> dict[str, Any]:
        """The log's settings."""
        return {
            "enabled": self.enabled,
            "threshold_ms": self.threshold_ms,
            "max_entries": self.max_entries,
            "records_query_text": self.keep_text,
        }
