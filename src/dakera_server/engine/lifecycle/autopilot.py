"""AutoPilot: the runtime configuration of background upkeep, its status, and the scheduler.

Config (dakera-api.md §3.13, §4.3) is saved in the store and applies from the next cycle.
``dedup_mode`` is ``off`` (default: no dedup pass), ``report`` (find groups, change nothing) or
``merge``. ``trash_retention_hours`` is how long removed memories stay restorable.

The scheduler is one daemon thread. Every few seconds it runs whatever is due — TTL sweep and
decay cycle on their own intervals (settings), deduplication and consolidation on the AutoPilot
intervals when ``enabled`` — one pass at a time, each throttled to its CPU share. At start it
first re-runs the resumable jobs an earlier process did not finish (``jobs.py``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from dakera_server.engine.lifecycle.jobs import Job, JobRegistry
from dakera_server.engine.lifecycle.state import StateStore
from dakera_server.engine.rules import check_importance
from dakera_server.errors import DakeraError, InvalidInput

__all__ = ["DEDUP_MODES", "AutoPilot", "AutoPilotConfig"]

logger = logging.getLogger("dakera_server.lifecycle")

DEDUP_MODES = ("off", "report", "merge")
TICK_SECONDS = 2.0
MAX_INTERVAL_HOURS = 8760


@dataclass(frozen=True)
class AutoPilotConfig:
    """``GET /v1/admin/autopilot/status`` ``config`` and ``PUT /v1/admin/autopilot/config``."""

    enabled: bool = True
    dedup_threshold: float = 0.93
    dedup_interval_hours: int = 6
    consolidation_interval_hours: int = 12
    dedup_mode: str = "off"
    dedup_cross_session: bool = False
    consolidate_cross_session: bool = False
    trash_retention_hours: int = 168

    def changed(self, changes: Mapping[str, Any]) -> AutoPilotConfig:
        """A validated copy with the fields in ``changes`` set (None = unchanged)."""
        updated = self
        for name in ("enabled", "dedup_cross_session", "consolidate_cross_session"):
            value = changes.get(name)
            if value is not None:
                if not isinstance(value, bool):
                    raise InvalidInput(f"'{name}' must be true or false")
                flag: dict[str, Any] = {name: value}
                updated = replace(updated, **flag)
        if changes.get("dedup_threshold") is not None:
            threshold = check_importance(changes["dedup_threshold"], "dedup_threshold")
            if threshold <= 0.0:
                raise InvalidInput("'dedup_threshold' must be above 0")
            updated = replace(updated, dedup_threshold=threshold)
        for name, low, high in (
            ("dedup_interval_hours", 1, MAX_INTERVAL_HOURS),
            ("consolidation_interval_hours", 1, MAX_INTERVAL_HOURS),
            ("trash_retention_hours", 0, 8760),
        ):
            value = changes.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidInput(f"'{name}' must be a whole number from {low} to {high}")
            number: dict[str, Any] = {name: value}
            updated = replace(updated, **number)
        mode = changes.get("dedup_mode")
        if mode is not None:
            if not isinstance(mode, str) or mode.lower() not in DEDUP_MODES:
                raise InvalidInput(f"'dedup_mode' must be one of {', '.join(DEDUP_MODES)}")
            updated = replace(updated, dedup_mode=mode.lower())
        return updated


# kind, params, resumed_from → the finished job
JobRunner = Callable[[str, dict[str, Any], "str | None"], Job]


class AutoPilot:
    """AutoPilot config, counters and the background scheduler."""

    def __init__(
        self,
        state: StateStore,
        jobs: JobRegistry,
        *,
        enabled_default: bool,
        decay_interval_secs: int,
        ttl_interval_secs: int,
        last_decay_at: Callable[[], int | None],
    ) -> None:
        self.state = state
        self.jobs = jobs
        self.decay_interval_secs = decay_interval_secs
        self.ttl_interval_secs = ttl_interval_secs
        self.last_decay_at = last_decay_at
        saved = state.load("autopilot.config")
        try:
            self.config = AutoPilotConfig(enabled=enabled_default).changed(saved or {})
        except InvalidInput:
            self.config = AutoPilotConfig(enabled=enabled_default)
        self.counters: dict[str, Any] = state.load("autopilot.stats") or {
            "last_dedup_at": None,
            "last_consolidation_at": None,
            "total_dedup_removed": 0,
            "total_consolidated": 0,
        }
        self._counter_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last_ttl_at: float | None = None
        self._started_at = 0.0

    # ---------------------------------------------------------------- config
    def update_config(self, changes: Mapping[str, Any]) -> AutoPilotConfig:
        """Validate and persist a config change (applies from the next cycle)."""
        config = self.config.changed(changes)
        self.state.save("autopilot.config", asdict(config))
        self.config = config
        return config

    def status(self) -> dict[str, Any]:
        """Config plus last-run counters (§3.13)."""
        with self._counter_lock:
            counters = dict(self.counters)
        return {"config": asdict(self.config), **counters}

    def record(self, *, dedup_removed: int | None = None, consolidated: int | None = None) -> None:
        """Count a finished dedup or consolidation pass (persisted)."""
        now = int(self.jobs.clock())
        with self._counter_lock:
            if dedup_removed is not None:
                self.counters["last_dedup_at"] = now
                self.counters["total_dedup_removed"] = (
                    int(self.counters.get("total_dedup_removed", 0)) + dedup_removed
                )
            if consolidated is not None:
                self.counters["last_consolidation_at"] = now
                self.counters["total_consolidated"] = (
                    int(self.counters.get("total_consolidated", 0)) + consolidated
                )
            snapshot = dict(self.counters)
        self.state.save("autopilot.stats", snapshot)

    # ------------------------------------------------------------- scheduler
    def start(self, run: JobRunner) -> None:
        """Start the scheduler thread (after the indexes are loaded)."""
        if self._thread is not None:
            return
        self._started_at = self.jobs.clock()
        self._thread = threading.Thread(
            target=self._loop, args=(run,), name="dakera-autopilot", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the scheduler; a running pass stops at its next checkpoint."""
        self.jobs.stop_event.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)

    def _loop(self, run: JobRunner) -> None:
        for job_id, kind, params in self.jobs.interrupted():
            if self.jobs.stop_event.is_set():
                return
            logger.info("resuming interrupted %s job %s", kind, job_id)
            self._run_logged(run, kind, params, job_id)
        while not self.jobs.stop_event.wait(TICK_SECONDS):
            for kind in self.due():
                if self.jobs.stop_event.is_set():
                    return
                self._run_logged(run, kind, {}, None)

    def _run_logged(
        self, run: JobRunner, kind: str, params: dict[str, Any], resumed_from: str | None
    ) -> None:
        try:
            run(kind, params, resumed_from)
        except DakeraError as exc:
            logger.warning("background %s job failed: %s", kind, exc.message)
        if kind == "ttl_sweep":
            self._last_ttl_at = self.jobs.clock()

    def due(self) -> list[str]:
        """The passes whose interval has elapsed (by the engine clock)."""
        now = self.jobs.clock()
        started = self._started_at
        due = []
        if self.ttl_interval_secs > 0:
            last = self._last_ttl_at if self._last_ttl_at is not None else started
            if now - last >= self.ttl_interval_secs:
                due.append("ttl_sweep")
        if self.decay_interval_secs > 0:
            last_decay = self.last_decay_at()
            last = started if last_decay is None else max(last_decay, started)
            if now - last >= self.decay_interval_secs:
                due.append("decay")
        config = self.config
        if config.enabled and config.dedup_mode != "off":
            if now - self._since("last_dedup_at") >= config.dedup_interval_hours * 3600:
                due.append("dedup")
        if config.enabled:
            if (
                now - self._since("last_consolidation_at")
                >= config.consolidation_interval_hours * 3600
            ):
                due.append("consolidation")
        return due

    def _since(self, counter: str) -> float:
        """When the pass counted by ``counter`` last ran in this process's view."""
        with self._counter_lock:
            value = self.counters.get(counter)
        if isinstance(value, int | float):
            return max(float(value), self._started_at)
        return self._started_at
