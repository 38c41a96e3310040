"""Per-key usage counters: counted in memory on every request, persisted every few seconds.

The authentication layer calls ``UsageBook.record`` once per authenticated request, after the
response; that is a lock and a few integer additions, never a store write. ``flush`` (run by
the background thread and at shutdown) writes the counters that changed since the last flush,
so a crash loses at most one flush interval of counts, never a key.

On a store shared by several nodes (``node`` given) each node writes only its own row per key
(``<key_id>@<node>``: absolute values of what that node counted), so nodes never overwrite each
other's counts; ``get`` adds every node's row to this node's live counters. A row named by the
key id alone (written before, or by the embedded store) counts as one more node.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from dakera_server.storage.base import Op, Store

__all__ = ["USAGE_GROUP", "KeyUsage", "UsageBook"]

USAGE_GROUP = "usage"
# Namespaces and endpoints come from client-chosen paths; past this many distinct values per key
# the rest are counted under one bucket, so a client cannot grow the server's memory at will.
MAX_BUCKETS = 500
OTHER = "(other)"


@dataclass
class KeyUsage:
    """Cumulative counters of one key since it was created."""

    total: int = 0
    successful: int = 0
    failed: int = 0
    rate_limited: int = 0
    bytes_transferred: int = 0
    latency_ms_total: float = 0.0
    last_used_at: int | None = None
    by_endpoint: dict[str, int] = field(default_factory=dict)
    by_namespace: dict[str, int] = field(default_factory=dict)

    def to_wire(self, key_id: str) -> dict[str, Any]:
        """The ``/usage`` answer (dakera-api.md §3.11): totals, average latency, breakdowns."""
        return {
            "key_id": key_id,
            "total_requests": self.total,
            "successful_requests": self.successful,
            "failed_requests": self.failed,
            "rate_limited_requests": self.rate_limited,
            "bytes_transferred": self.bytes_transferred,
            "avg_latency_ms": round(self.latency_ms_total / self.total, 3) if self.total else 0.0,
            "last_used_at": self.last_used_at,
            "by_endpoint": [
                {"endpoint": name, "requests": count}
                for name, count in sorted(self.by_endpoint.items(), key=lambda kv: -kv[1])
            ],
            "by_namespace": [
                {"namespace": name, "requests": count}
                for name, count in sorted(self.by_namespace.items(), key=lambda kv: -kv[1])
            ],
        }

    def to_payload(self) -> bytes:
        """Stored form."""
        return orjson.dumps(self.__dict__)

    @classmethod
    def from_payload(cls, data: bytes) -> KeyUsage:
        """Inverse of ``to_payload``; unknown fields from a newer server are ignored."""
        raw = orjson.loads(data)
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def _bump(buckets: dict[str, int], name: str) -> None:
    if name not in buckets and len(buckets) >= MAX_BUCKETS:
        name = OTHER
    buckets[name] = buckets.get(name, 0) + 1


def _add(total: KeyUsage, other: KeyUsage) -> None:
    """Add ``other``'s counters into ``total`` (another node's row)."""
    total.total += other.total
    total.successful += other.successful
    total.failed += other.failed
    total.rate_limited += other.rate_limited
    total.bytes_transferred += other.bytes_transferred
    total.latency_ms_total += other.latency_ms_total
    if other.last_used_at is not None:
        total.last_used_at = max(total.last_used_at or 0, other.last_used_at)
    for mine, theirs in (
        (total.by_endpoint, other.by_endpoint),
        (total.by_namespace, other.by_namespace),
    ):
        for name, count in theirs.items():
            mine[name] = mine.get(name, 0) + count


class UsageBook:
    """Usage of every key, in memory, with the set of keys changed since the last flush."""

    def __init__(self, store: Store, node: str | None = None) -> None:
        self._store = store
        self._node = node
        self._lock = threading.Lock()
        self._usage: dict[str, KeyUsage] = {}
        self._dirty: set[str] = set()
        for row in store.iter_rows("api_keys", USAGE_GROUP):
            key_id, _, owner = row.key.partition("@")
            if owner == (node or ""):
                self._usage[key_id] = KeyUsage.from_payload(row.payload)

    def _row_key(self, key_id: str) -> str:
        return key_id if self._node is None else f"{key_id}@{self._node}"

    def _others(self, key_id: str) -> list[tuple[str, KeyUsage]]:
        """Rows of ``key_id`` other nodes wrote (none on a store of one process)."""
        if self._node is None:
            return []
        own = self._row_key(key_id)
        return [
            (row.key, KeyUsage.from_payload(row.payload))
            for row in self._store.iter_rows("api_keys", USAGE_GROUP)
            if row.key != own and row.key.partition("@")[0] == key_id
        ]

    def record(
        self,
        key_id: str,
        status: int,
        nbytes: int,
        latency_ms: float,
        endpoint: str,
        namespace: str | None,
        now: int,
    ) -> None:
        """Count one finished request of ``key_id`` (hot path: no I/O)."""
        with self._lock:
            usage = self._usage.get(key_id)
            if usage is None:
                usage = self._usage[key_id] = KeyUsage()
            usage.total += 1
            if status == 429:
                usage.rate_limited += 1
            if status < 400:
                usage.successful += 1
            else:
                usage.failed += 1
            usage.bytes_transferred += nbytes
            usage.latency_ms_total += latency_ms
            usage.last_used_at = now
            _bump(usage.by_endpoint, endpoint)
            if namespace is not None:
                _bump(usage.by_namespace, namespace)
            self._dirty.add(key_id)

    def get(self, key_id: str) -> KeyUsage:
        """A copy of the counters of ``key_id`` (zeros when it was never used), every node's
        rows added on a shared store."""
        with self._lock:
            usage = self._usage.get(key_id)
            total = KeyUsage() if usage is None else KeyUsage.from_payload(usage.to_payload())
        for _, other in self._others(key_id):
            _add(total, other)
        return total

    def forget_ops(self, key_ids: Iterable[str]) -> list[Op]:
        """Drop the counters of deleted keys; the returned ops delete their stored rows (every
        node's, on a shared store)."""
        key_ids = list(key_ids)
        ops = []
        with self._lock:
            for key_id in key_ids:
                self._usage.pop(key_id, None)
                self._dirty.discard(key_id)
                ops.append(Op.delete("api_keys", self._row_key(key_id), group=USAGE_GROUP))
        for key_id in key_ids:
            for row_key, _ in self._others(key_id):
                ops.append(Op.delete("api_keys", row_key, group=USAGE_GROUP))
        return ops

    def flush(self) -> int:
        """Persist the counters changed since the last flush; returns how many keys."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            ops = [
                Op.put(
                    "api_keys",
                    self._row_key(key_id),
                    self._usage[key_id].to_payload(),
                    group=USAGE_GROUP,
                )
                for key_id in dirty
                if key_id in self._usage
            ]
        self._store.write(ops)
        return len(ops)
