"""AutoPilot: the runtime configuration of background upkeep, its status, and the scheduler.

Config (dakera-api.md §3.13, §4.3) is saved in the store and applies from the next cycle.
``dedup_mode`` is ``off`` (default: no dedup pass), ``report`` (find groups, change nothing) or
``merge``. ``trash_retention_hours`` is how long removed memories stay restorable.

The scheduler is one daemon thread. Every few seconds it runs whatever is due — TTL sweep and
decay cycle on their own intervals (settings), deduplication and consolidation on the AutoPilot
intervals when ``enabled`` — one pass at a time, each throttled to its CPU share. At start it
first re-runs the resumable jobs an earlier process did not finish (``jobs.py``).

On a store shared by several nodes every scheduled pass runs under ``exclusive(kind)`` (a
PostgreSQL advisory lock, ``Store.exclusive``): one node at a time runs it, and the node that
gets the lock first reads when the pass last finished on any node (``pass.<kind>`` in the
state store) and skips it when that was within its interval, so a pass runs once per interval
for the whole cluster. Job markers left by a node that died mid-pass are resumed by whichever
node next holds that kind's lock (checked every ``RESUME_CHECK_SECONDS``): the dead node's lock
went with its connection, and a live node's running pass still holds it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
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
RESUME_CHECK_SECONDS = 60.0
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


PASS_PREFIX = "pass."  # state documents: when a scheduled pass last finished, on any node


@contextmanager
def _always_mine(_kind: str) -> Iterator[bool]:
    """Default ``exclusive``: a store of one process; every pass is this process's."""
    yield True


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
        self._enabled_default = enabled_default
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
        # Set by the lifecycle engine from the store: one node at a time runs a pass.
        self.exclusive: Callable[[str], AbstractContextManager[bool]] = _always_mine
        self.shared = False  # set with ``exclusive`` when several nodes share the store
        self._elsewhere: dict[str, float] = {}  # kind → when another node last finished it
        self._resume_checked = 0.0

    # ---------------------------------------------------------------- config
    def reload(self) -> None:
        """Read config and counters again (another node sharing the store changed them)."""
        saved = self.state.load("autopilot.config")
        try:
            self.config = AutoPilotConfig(enabled=self._enabled_default).changed(saved or {})
        except InvalidInput:
            self.config = AutoPilotConfig(enabled=self._enabled_default)
        counters = self.state.load("autopilot.stats")
        if counters:
            with self._counter_lock:
                self.counters = counters

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
        self._resume(run)
        while not self.jobs.stop_event.wait(TICK_SECONDS):
            if self.shared and self.jobs.clock() - self._resume_checked >= RESUME_CHECK_SECONDS:
                self._resume(run)
            for kind in self.due():
                if self.jobs.stop_event.is_set():
                    return
                self._run_once(run, kind)

    def _resume(self, run: JobRunner) -> None:
        """Re-run resumable jobs nobody is running (each under its kind's lock)."""
        self._resume_checked = self.jobs.clock()
        try:
            pending = self.jobs.interrupted()
        except DakeraError as exc:
            logger.warning("interrupted jobs not checked: %s", exc.message)
            return
        running = {job.id for job in self.jobs.list() if job.status == "running"}
        for job_id, kind, params in pending:
            if self.jobs.stop_event.is_set():
                return
            if job_id in running:  # this process's own pass (a client asked for it)
                continue
            try:
                with self.exclusive(kind) as mine:
                    if not mine or job_id not in {j for j, _, _ in self.jobs.interrupted()}:
                        continue  # running on a live node, or resumed by another meanwhile
                    logger.info("resuming interrupted %s job %s", kind, job_id)
                    self._run_logged(run, kind, params, job_id)
            except DakeraError as exc:
                logger.warning("resuming %s job %s deferred: %s", kind, job_id, exc.message)

    def _run_once(self, run: JobRunner, kind: str) -> None:
        """A scheduled pass, unless another node holds it or finished it within its interval."""
        if not self.shared:
            self._run_logged(run, kind, {}, None)
            return
        try:
            with self.exclusive(kind) as mine:
                if not mine:
                    return
                shared = self.state.load(PASS_PREFIX + kind) or {}
                finished = shared.get("finished_at")
                if isinstance(finished, int | float) and finished > self._local_last(kind):
                    self._elsewhere[kind] = float(finished)
                    if kind not in self.due():
                        return
                self._run_logged(run, kind, {}, None)
                self.state.save(PASS_PREFIX + kind, {"finished_at": self.jobs.clock()})
        except DakeraError as exc:
            logger.warning("background %s pass deferred: %s", kind, exc.message)

    def _local_last(self, kind: str) -> float:
        if kind == "ttl_sweep":
            return self._last_ttl_at or 0.0
        if kind == "decay":
            return float(self.last_decay_at() or 0)
        counter = "last_dedup_at" if kind == "dedup" else "last_consolidation_at"
        return self._since(counter)

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
            last = max(last, self._elsewhere.get("ttl_sweep", 0.0))
            if now - last >= self.ttl_interval_secs:
                due.append("ttl_sweep")
        if self.decay_interval_secs > 0:
            last_decay = self.last_decay_at()
            last = started if last_decay is None else max(last_decay, started)
            last = max(last, self._elsewhere.get("decay", 0.0))
            if now - last >= self.decay_interval_secs:
                due.append("decay")
        config = self.config
        if config.enabled and config.dedup_mode != "off":
            last = max(self._since("last_dedup_at"), self._elsewhere.get("dedup", 0.0))
            if now - last >= config.dedup_interval_hours * 3600:
                due.append("dedup")
        if config.enabled:
            last = max(
                self._since("last_consolidation_at"), self._elsewhere.get("consolidation", 0.0)
            )
            if now - last >= config.consolidation_interval_hours * 3600:
                due.append("consolidation")
        return due

    def _since(self, counter: str) -> float:
        """When the pass counted by ``counter`` last ran in this process's view."""
        with self._counter_lock:
            value = self.counters.get(counter)
        if isinstance(value, int | float):
            return max(float(value), self._started_at)
        return self._started_at
