"""Scheduled backups: an interval (or a cron-like spelling of one), retention, a background thread.

The schedule is persisted in the store's meta table (``backup.schedule``), so it survives a
restart and, sealed like every meta row, names no namespace in the clear. The thread wakes every
second, takes a backup when the interval since the last one has passed, then applies retention
to scheduled backups only (``keep_last`` newest, and none older than ``retention_days``):
a backup an operator made by hand is never deleted by the schedule.

Accepted cron spellings (what maps to a fixed interval): ``@hourly``, ``@daily``, ``@weekly``,
``*/N * * * *`` (every N minutes), ``0 */N * * *`` (every N hours), ``0 0 * * *`` (daily).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from dakera_server.engine.portability.backups import BackupManager
from dakera_server.engine.portability.records import check_backup_request
from dakera_server.errors import DakeraError, InvalidInput
from dakera_server.storage.base import Op

__all__ = ["BackupSchedule", "BackupScheduler", "parse_cron"]

logger = logging.getLogger("dakera_server.backups")
META_KEY = "backup.schedule"
TICK_SECONDS = 1.0
CRON_ALIASES = {"@hourly": 3600, "@daily": 86400, "@midnight": 86400, "@weekly": 604800}
EVERY_MINUTES = re.compile(r"^\*/(\d+) \* \* \* \*$")
EVERY_HOURS = re.compile(r"^0 \*/(\d+) \* \* \*$")
FIELDS = frozenset(
    {"enabled", "interval_secs", "cron", "keep_last", "retention_days", "namespaces",
     "compression", "name_prefix"}
)  # fmt: skip


def parse_cron(expression: str) -> int:
    """The interval in seconds a supported cron spelling means (400 otherwise)."""
    text = " ".join(expression.split())
    if text in CRON_ALIASES:
        return CRON_ALIASES[text]
    if text == "0 0 * * *":
        return 86400
    if (match := EVERY_MINUTES.match(text)) and int(match.group(1)) > 0:
        return 60 * int(match.group(1))
    if (match := EVERY_HOURS.match(text)) and int(match.group(1)) > 0:
        return 3600 * int(match.group(1))
    raise InvalidInput(
        f"cron '{expression}' is not supported: use @hourly, @daily, @weekly, '*/N * * * *', "
        "'0 */N * * *', or interval_secs"
    )


@dataclass
class BackupSchedule:
    """When scheduled backups run and how many are kept."""

    enabled: bool = False
    interval_secs: int = 86400
    cron: str | None = None
    keep_last: int | None = 7
    retention_days: int | None = None
    namespaces: list[str] | None = None
    compression: str = "gzip"
    name_prefix: str = "scheduled"
    last_run_at: int | None = None
    last_backup_id: str | None = None
    last_error: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The schedule object of the routes, with the next run."""
        wire = asdict(self)
        wire["next_run_at"] = (
            None if not self.enabled else (self.last_run_at or 0) + self.interval_secs
        )
        return wire


def _whole(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput(f"'{name}' must be a whole number of at least {minimum}")
    return value


class BackupScheduler:
    """Holds the schedule and runs it in a background thread."""

    def __init__(self, manager: BackupManager) -> None:
        self.manager = manager
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.schedule = BackupSchedule()
        row = manager.store.get_row("meta", META_KEY)
        if row is not None:
            self.schedule = BackupSchedule(**orjson.loads(row.payload))

    def _save(self) -> None:
        self.manager.store.write([Op.put("meta", META_KEY, orjson.dumps(asdict(self.schedule)))])

    def update(self, body: Any) -> BackupSchedule:
        """Change the schedule (fields not sent keep their value); persisted before answering."""
        if not isinstance(body, dict):
            raise InvalidInput("the schedule must be a JSON object")
        unknown = sorted(set(body) - FIELDS)
        if unknown:
            raise InvalidInput(f"unknown schedule field '{unknown[0]}'")
        with self._lock:
            current = asdict(self.schedule)
            if "enabled" in body:
                if not isinstance(body["enabled"], bool):
                    raise InvalidInput("'enabled' must be true or false")
                current["enabled"] = body["enabled"]
            if body.get("cron") is not None:
                if not isinstance(body["cron"], str):
                    raise InvalidInput("'cron' must be a string")
                current["interval_secs"] = parse_cron(body["cron"])
                current["cron"] = body["cron"]
            if body.get("interval_secs") is not None:
                current["interval_secs"] = _whole("interval_secs", body["interval_secs"], 1)
                current["cron"] = None
            for name in ("keep_last", "retention_days"):
                if name in body:
                    current[name] = None if body[name] is None else _whole(name, body[name], 1)
            if "namespaces" in body:
                current["namespaces"] = body["namespaces"]
            if body.get("compression") is not None:
                current["compression"] = body["compression"]
            if body.get("name_prefix") is not None:
                current["name_prefix"] = body["name_prefix"]
            # The same checks a manual backup gets, before anything is saved.
            check_backup_request(
                current["name_prefix"], current["namespaces"], current["compression"], None
            )
            self.schedule = BackupSchedule(**current)
            self._save()
            return self.schedule

    # ------------------------------------------------------------------ thread
    def start(self) -> None:
        """Run the schedule in the background."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="dakera-backups", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread (a backup in progress finishes first)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=60)

    def _loop(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            if not self._due():
                continue
            # Several nodes on one shared store: one of them takes the scheduled backup, and
            # re-reads the schedule under the lock (another may have just taken it).
            with self.manager.store.exclusive("backup-schedule") as mine:
                if mine:
                    self._reread()
                    if self._due():
                        self.run_once()

    def _due(self) -> bool:
        schedule = self.schedule
        now = int(self.manager.clock())
        return schedule.enabled and now >= (schedule.last_run_at or 0) + schedule.interval_secs

    def _reread(self) -> None:
        """The schedule as stored (a shared store: another node may have changed or run it)."""
        row = self.manager.store.get_row("meta", META_KEY)
        if row is not None:
            with self._lock:
                self.schedule = BackupSchedule(**orjson.loads(row.payload))

    def run_once(self) -> None:
        """Take one scheduled backup now and apply retention."""
        schedule = self.schedule
        now = int(self.manager.clock())
        try:
            record = self.manager.create(
                f"{schedule.name_prefix}-{now}",
                namespaces=schedule.namespaces,
                compression=schedule.compression,
                trigger="scheduled",
            )
            error: str | None = None
            backup_id: str | None = record.backup_id
        except DakeraError as exc:
            logger.warning("scheduled backup failed: %s", exc.message)
            error, backup_id = exc.message, schedule.last_backup_id
        with self._lock:
            self.schedule.last_run_at = now
            self.schedule.last_backup_id = backup_id
            self.schedule.last_error = error
            self._save()
        self.apply_retention()

    def apply_retention(self) -> list[str]:
        """Delete scheduled backups beyond ``keep_last`` or older than ``retention_days``."""
        schedule = self.schedule
        scheduled = [r for r in self.manager.all() if r.trigger == "scheduled"]
        doomed = []
        if schedule.keep_last is not None:
            doomed += scheduled[schedule.keep_last :]
        if schedule.retention_days is not None:
            cutoff = self.manager.clock() - schedule.retention_days * 86400
            doomed += [r for r in scheduled if r.created_at < cutoff]
        removed = []
        for record in {r.backup_id: r for r in doomed}.values():
            self.manager.delete(record.backup_id)
            removed.append(record.backup_id)
        return removed
