"""The counters of one route or namespace: requests, errors, bytes, and a latency histogram.

Cheap to update on the request path (integer additions and one ``bisect``), cheap to copy
(readers take copies under no lock) and to subtract (a window of analytics is the difference of
two snapshots). Quantiles come from the buckets, as Prometheus' ``histogram_quantile`` reads
them, so memory does not grow with traffic (``metrics.py`` holds the registry of them).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["BOUNDS_MS", "Histogram", "Stats", "total_of"]

# Upper bounds (inclusive, milliseconds) of the latency buckets; one more bucket is +Inf.
BOUNDS_MS: tuple[float, ...] = (
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    25.0,
    50.0,
    100.0,
    250.0,
    500.0,
    1000.0,
    2500.0,
    5000.0,
    10000.0,
    30000.0,
)


class Histogram:
    """Latency buckets (``BOUNDS_MS`` + one overflow bucket), their count and sum."""

    __slots__ = ("buckets", "count", "max_ms", "sum_ms")

    def __init__(self) -> None:
        self.buckets = [0] * (len(BOUNDS_MS) + 1)
        self.count = 0
        self.sum_ms = 0.0
        self.max_ms = 0.0

    def observe(self, ms: float) -> None:
        """Count one duration."""
        self.buckets[bisect_left(BOUNDS_MS, ms)] += 1
        self.count += 1
        self.sum_ms += ms
        if ms > self.max_ms:
            self.max_ms = ms

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (0-1) in ms, interpolated inside its bucket; 0.0 when empty.

        The overflow bucket has no upper bound: a quantile falling there answers the largest
        duration seen (over the whole life of the counters, not only the window)."""
        if self.count <= 0:
            return 0.0
        rank = q * self.count
        seen = 0
        for index, in_bucket in enumerate(self.buckets):
            if in_bucket <= 0:
                continue
            if seen + in_bucket >= rank:
                if index == len(BOUNDS_MS):
                    return max(self.max_ms, BOUNDS_MS[-1])
                lower = 0.0 if index == 0 else BOUNDS_MS[index - 1]
                upper = BOUNDS_MS[index]
                fraction = (rank - seen) / in_bucket
                return lower + (upper - lower) * max(0.0, min(1.0, fraction))
            seen += in_bucket
        return self.max_ms

    def highest_ms(self) -> float:
        """The largest duration these counts can hold: the upper bound of the highest non-empty
        bucket, capped by the largest duration ever seen (0.0 when empty)."""
        for index in range(len(self.buckets) - 1, -1, -1):
            if self.buckets[index]:
                if index == len(BOUNDS_MS):
                    return max(self.max_ms, BOUNDS_MS[-1])
                return min(self.max_ms, BOUNDS_MS[index]) if self.max_ms else BOUNDS_MS[index]
        return 0.0

    @property
    def mean_ms(self) -> float:
        """Average duration in ms (0.0 when empty)."""
        return self.sum_ms / self.count if self.count else 0.0

    def copy(self) -> Histogram:
        """An independent copy."""
        other = Histogram()
        other.buckets = list(self.buckets)
        other.count = self.count
        other.sum_ms = self.sum_ms
        other.max_ms = self.max_ms
        return other

    def add(self, other: Histogram) -> None:
        """Add ``other``'s counts into this one."""
        for index, value in enumerate(other.buckets):
            self.buckets[index] += value
        self.count += other.count
        self.sum_ms += other.sum_ms
        self.max_ms = max(self.max_ms, other.max_ms)

    def minus(self, base: Histogram | None) -> Histogram:
        """What was counted since ``base`` (an earlier copy); counters never go backwards, so a
        smaller value means the counters restarted and the whole of this one is returned."""
        if base is None or base.count > self.count:
            return self.copy()
        other = Histogram()
        other.buckets = [max(0, a - b) for a, b in zip(self.buckets, base.buckets, strict=True)]
        other.count = self.count - base.count
        other.sum_ms = max(0.0, self.sum_ms - base.sum_ms)
        other.max_ms = self.max_ms
        return other

    def to_wire(self) -> dict[str, Any]:
        """Sparse JSON form (only non-zero buckets) for snapshots."""
        return {
            "b": {str(i): v for i, v in enumerate(self.buckets) if v},
            "n": self.count,
            "s": round(self.sum_ms, 3),
            "m": round(self.max_ms, 3),
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Histogram:
        """Inverse of ``to_wire`` (unknown bucket indexes are ignored)."""
        histogram = cls()
        for key, value in dict(data.get("b") or {}).items():
            index = int(key)
            if 0 <= index < len(histogram.buckets):
                histogram.buckets[index] = int(value)
        histogram.count = int(data.get("n", 0))
        histogram.sum_ms = float(data.get("s", 0.0))
        histogram.max_ms = float(data.get("m", 0.0))
        return histogram


class Stats:
    """Counters of one route or one namespace."""

    __slots__ = (
        "bytes_in",
        "bytes_out",
        "errors_4xx",
        "errors_5xx",
        "latency",
        "recalls",
        "records",
        "requests",
        "stores",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.errors_4xx = 0
        self.errors_5xx = 0
        self.stores = 0  # store/upsert requests
        self.recalls = 0  # recall/search/query requests
        self.records = 0  # records written (memories stored, vectors upserted)
        self.bytes_in = 0
        self.bytes_out = 0
        self.latency = Histogram()

    _COUNTS = (
        "requests",
        "errors_4xx",
        "errors_5xx",
        "stores",
        "recalls",
        "records",
        "bytes_in",
        "bytes_out",
    )

    def copy(self) -> Stats:
        """An independent copy."""
        other = Stats()
        for name in self._COUNTS:
            setattr(other, name, getattr(self, name))
        other.latency = self.latency.copy()
        return other

    def add(self, other: Stats) -> None:
        """Add ``other``'s counts into these."""
        for name in self._COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.latency.add(other.latency)

    def minus(self, base: Stats | None) -> Stats:
        """Counts since ``base``; see ``Histogram.minus`` for counters that restarted."""
        if base is None or base.requests > self.requests:
            return self.copy()
        other = Stats()
        for name in self._COUNTS:
            setattr(other, name, max(0, getattr(self, name) - getattr(base, name)))
        other.latency = self.latency.minus(base.latency)
        return other

    def to_wire(self) -> dict[str, Any]:
        """JSON form for snapshots (zero counters left out)."""
        wire: dict[str, Any] = {n: getattr(self, n) for n in self._COUNTS if getattr(self, n)}
        if self.latency.count:
            wire["latency"] = self.latency.to_wire()
        return wire

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Stats:
        """Inverse of ``to_wire``."""
        stats = cls()
        for name in cls._COUNTS:
            setattr(stats, name, int(data.get(name, 0)))
        if "latency" in data:
            stats.latency = Histogram.from_wire(data["latency"])
        return stats


def total_of(stats: Iterable[Stats]) -> Stats:
    """One ``Stats`` adding up ``stats``."""
    total = Stats()
    for each in stats:
        total.add(each)
    return total
