"""Metric history: small periodic snapshots of the counters, so a period survives a restart.

Every ``interval`` seconds (and at shutdown) the cumulative counters are written as one
compressed ``meta`` row (``ops.metrics.<unix seconds>``) through the ``Store`` contract, so
encryption at rest and key rotation cover them like any other record. A period (``1h``,
``24h``, ``7d``) is answered as *now* minus the newest snapshot taken at or before its start —
Prometheus' ``increase()`` — so reading a period costs one snapshot decode, whatever the
traffic. At start-up the newest snapshot is restored into the registry, so counting continues
where it stopped (a crash loses at most one interval).

Retention thins old snapshots: all of the last 2 hours, one per 10 minutes for 2 days, one per
hour for 35 days; older ones are deleted in the same write that adds a new one.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable, Collection
from typing import Any

import orjson

from dakera_server.engine.ops.metrics import MetricsRegistry, MetricsState
from dakera_server.storage.base import Op, Store

__all__ = ["PREFIX", "MetricsHistory", "parse_period"]

logger = logging.getLogger("dakera_server.ops")

PREFIX = "ops.metrics."
ORIGIN_KEY = "ops.metrics_origin"
# (age in seconds up to which the rule applies, spacing kept between snapshots)
RETENTION: tuple[tuple[int, int], ...] = ((2 * 3600, 0), (2 * 86400, 600), (35 * 86400, 3600))
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_PERIOD_SECONDS = 366 * 86400


def parse_period(period: str | None, default: str = "1h") -> tuple[str, int]:
    """``"24h"`` → (``"24h"``, 86400); raises ``ValueError`` with a message naming the forms."""
    text = (period or default).strip().lower()
    number, unit = text[:-1], text[-1:]
    if unit not in UNITS or not number.isdigit() or int(number) <= 0:
        raise ValueError(
            f"'period' must be a whole number followed by s, m, h, d or w (like 1h, 24h, 7d), "
            f"not {period!r}"
        )
    seconds = int(number) * UNITS[unit]
    if seconds > MAX_PERIOD_SECONDS:
        raise ValueError("'period' may cover at most 366 days")
    return text, seconds


class MetricsHistory:
    """The snapshots of one registry, persisted in ``store``'s ``meta`` table."""

    def __init__(
        self,
        store: Store,
        registry: MetricsRegistry,
        *,
        interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.registry = registry
        self.interval = interval
        self.clock = clock
        self._rows: dict[int, bytes] = {}  # snapshot time → stored payload (decoded lazily)
        self._decoded: dict[int, MetricsState] = {}
        self._lock = threading.Lock()
        self.origin = int(clock())
        self.last_snapshot_at: int | None = None
        # Where this registry's snapshots are kept: ``ops.metrics.<s>``; on a store shared by
        # several nodes the engine sets ``ops.metrics.<node>.`` so each node has its history.
        self.prefix = PREFIX

    # ------------------------------------------------------------------ persistence
    def load(self) -> int:
        """Read the snapshot index and restore the newest one; returns how many exist."""
        rows: dict[int, bytes] = {}
        for row in self.store.iter_rows("meta"):
            if row.key.startswith(self.prefix):
                try:
                    rows[int(row.key[len(self.prefix) :])] = row.payload
                except ValueError:
                    continue
            elif row.key == ORIGIN_KEY:
                self.origin = int(orjson.loads(row.payload))
        with self._lock:
            self._rows = rows
        if not rows:
            self.store.write([Op.put("meta", ORIGIN_KEY, orjson.dumps(self.origin))])
            return 0
        newest = max(rows)
        state = self._state(newest)
        if state is not None:
            self.registry.restore(state)
            self.last_snapshot_at = newest
        return len(rows)

    def snapshot(self) -> int:
        """Persist the counters now (and thin old snapshots); returns the snapshot time."""
        now = int(self.clock())
        state = self.registry.snapshot()
        payload = zlib.compress(orjson.dumps(state.to_wire()), 6)
        with self._lock:
            if self.last_snapshot_at is not None and now <= self.last_snapshot_at:
                now = self.last_snapshot_at + 1  # one row per second at most, never overwritten
            self._rows[now] = payload
            self._decoded = {now: state}
            gone = self._expired(now)
            for stamp in gone:
                self._rows.pop(stamp, None)
        self.store.write(
            [Op.put("meta", f"{self.prefix}{now}", payload)]
            + [Op.delete("meta", f"{self.prefix}{stamp}") for stamp in gone]
        )
        self.last_snapshot_at = now
        return now

    def _expired(self, now: int) -> list[int]:
        """Snapshot times retention drops (called under the lock)."""
        gone: list[int] = []
        kept_slot: dict[tuple[int, int], int] = {}
        for stamp in sorted(self._rows, reverse=True):
            age = now - stamp
            rule = next((r for r in RETENTION if age <= r[0]), None)
            if rule is None:
                gone.append(stamp)
                continue
            limit, spacing = rule
            if spacing == 0:
                continue
            slot = (limit, stamp // spacing)
            if slot in kept_slot:
                gone.append(stamp)
            else:
                kept_slot[slot] = stamp
        return gone

    def _state(self, stamp: int) -> MetricsState | None:
        with self._lock:
            cached = self._decoded.get(stamp)
            raw = self._rows.get(stamp)
        if cached is not None:
            return cached
        if raw is None:
            return None
        try:
            data: Any = orjson.loads(zlib.decompress(raw))
        except (zlib.error, orjson.JSONDecodeError):
            logger.warning("metric snapshot %s is unreadable; skipped", stamp)
            return None
        state = MetricsState.from_wire(data)
        with self._lock:
            if len(self._decoded) > 8:
                self._decoded.clear()
            self._decoded[stamp] = state
        return state

    # ------------------------------------------------------------------ periods
    def window(
        self, seconds: int, namespaces: Collection[str] | None = None
    ) -> tuple[MetricsState, float]:
        """Counts of the last ``seconds`` (as far back as snapshots allow) and the seconds
        they actually cover; only the ``namespaces`` named (all when ``None``)."""
        now = self.clock()
        start = now - seconds
        with self._lock:
            older = [s for s in self._rows if s <= start]
        current = self.registry.snapshot(namespaces)
        if not older:
            return current, max(1.0, now - self.origin)
        base_at = max(older)
        base = self._state(base_at)
        if base is None:
            return current, max(1.0, now - self.origin)
        return current.minus(base), max(1.0, now - base_at)

    def active_since(self, seconds: int, prefix: str = "") -> int:
        """How many namespaces (starting with ``prefix``) stored or recalled anything in the
        last ``seconds`` — compares two counters per namespace, no histogram work."""
        base = self.at(self.clock() - seconds)
        current = self.registry.snapshot()
        count = 0
        for name, stats in current.namespaces.items():
            if not name.startswith(prefix):
                continue
            old = None if base is None else base.namespaces.get(name)
            moved = stats.stores + stats.recalls - (0 if old is None else old.stores + old.recalls)
            if moved > 0:
                count += 1
        return count

    def at(self, moment: float) -> MetricsState | None:
        """The counters as of the newest snapshot taken at or before ``moment`` (``None``: no
        snapshot that old, i.e. zero)."""
        with self._lock:
            older = [s for s in self._rows if s <= moment]
        return None if not older else self._state(max(older))

    def count(self) -> int:
        """How many snapshots are kept."""
        with self._lock:
            return len(self._rows)
