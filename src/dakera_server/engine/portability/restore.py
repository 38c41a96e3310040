"""Restore a backup as a job: verify first, then one atomic replacement, then a reload.

Order (each step refuses before the next one changes anything):

1. ``start`` (in the request): the backup is listed; its format version, completeness,
   SHA-256 and key are checked (``BackupReader.verify``: each failure its own 422); the targets
   are in the backup; without ``overwrite`` the target must be empty (409 otherwise).
2. The job: a dry run counts what would be written and replaced (attachments and their bytes
   too), and stops there. Otherwise the backup's attachment files are written first, as
   committed blobs no record names yet (``files.py``; requests are still served meanwhile).
   Then the gate closes (new requests get 503, writes in flight finish), background work
   stops, and ONE ``Store.write_stream`` transaction deletes the target's rows and writes the
   backup's, attachment records pointing at the new blobs: a crash in the middle leaves the
   store as it was (``kill -9`` safe) and the new blobs as orphans, which start-up sweeps; a
   failure deletes them at once. No record ever names a missing blob.
3. The engine reloads every in-memory index from the store (what start-up does; the API keys
   with the restored pepper, as one object), the blobs of the attachments the restore replaced
   are deleted (only now: the transaction committed), the gate opens, and a
   ``backup_restored`` event is emitted.

Modes: no ``target_namespaces`` restores everything the backup holds (API keys included) into
an empty server, or replaces all of it with ``overwrite``; ``target_namespaces`` restores only
those namespaces (agent namespaces ``_dakera_agent_<id>`` and vector namespaces) and leaves the
rest of the server, API keys included, alone.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from dakera_server.engine.attachments.models import Attachment
from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.portability.backups import BackupManager
from dakera_server.engine.portability.container import (
    ATTACHMENTS_SINCE,
    BackupReader,
    BlobPiece,
    VerifiedBackup,
    is_sealing,
)
from dakera_server.engine.portability.files import StagedFiles
from dakera_server.engine.portability.gate import MaintenanceGate
from dakera_server.engine.portability.sections import (
    BACKED_UP_TABLES,
    ROW_TABLES_V1,
    place,
    selected,
)
from dakera_server.errors import Conflict, DakeraError, InvalidInput, JobNotFound
from dakera_server.storage.base import Op, Store, StoredRow, Table

__all__ = ["RestoreJob", "RestoreManager", "plan_deletions"]

logger = logging.getLogger("dakera_server.backups")
BATCH_ROWS = 2000
KEPT_JOBS = 100


@dataclass
class RestoreJob:
    """One restore's state, as its status route shows it."""

    restore_id: str
    backup_id: str
    dry_run: bool
    overwrite: bool
    target_namespaces: list[str] | None
    started_at: int
    status: str = "running"
    phase: str = "verified"
    finished_at: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    replaced: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    duration_ms: float = 0.0
    # The tables the backup's format holds (a version-1 backup leaves attachments alone).
    tables: tuple[Table, ...] = BACKED_UP_TABLES

    def to_wire(self) -> dict[str, Any]:
        """The restore status object."""
        return {
            "restore_id": self.restore_id,
            "status": self.status,
            "phase": self.phase,
            "backup_id": self.backup_id,
            "dry_run": self.dry_run,
            "overwrite": self.overwrite,
            "target_namespaces": self.target_namespaces,
            "counts": self.counts,
            ("would_replace" if self.dry_run else "replaced"): self.replaced,
            "errors": self.errors,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_ms": round(self.duration_ms, 1),
        }


def plan_deletions(
    store: Store,
    targets: Sequence[str] | None,
    tables: Sequence[Table] = BACKED_UP_TABLES,
    replaced_blobs: list[str] | None = None,
) -> tuple[list[Op], dict[str, int]]:
    """The ops that empty the restore's target of ``tables``, and how many rows each section
    loses; the blobs of the attachments it deletes are appended to ``replaced_blobs``."""
    ops: list[Op] = []
    replaced: dict[str, int] = {}
    for table in tables:
        if table == "meta":
            continue  # meta rows are planned one by one below
        groups: dict[str, int] = {}
        keys: list[StoredRow] = []
        for row in store.iter_rows(table):
            placement = place(row)
            if placement is None or not selected(placement, targets):
                continue
            replaced[placement.section] = replaced.get(placement.section, 0) + 1
            if table == "attachments" and replaced_blobs is not None:
                replaced_blobs.append(Attachment.from_payload(row.group, row.key, row.payload).blob)
            if table == "namespaces":
                keys.append(row)
            else:
                groups[row.group] = groups.get(row.group, 0) + 1
        ops += [Op.delete_group(table, group) for group in groups]
        ops += [Op.delete(table, row.key, group=row.group) for row in keys]
    for row in store.iter_rows("meta"):
        placement = place(row)
        if placement is not None and selected(placement, targets):
            if placement.section != "key_settings":
                replaced[placement.section] = replaced.get(placement.section, 0) + 1
            ops.append(Op.delete("meta", row.key))
    return ops, replaced


class RestoreManager:
    """Starts restore jobs and keeps their status."""

    def __init__(
        self,
        store: Store,
        backups: BackupManager,
        events: EventBus,
        gate: MaintenanceGate,
        *,
        quiesce: Callable[[], object],
        reload: Callable[[], object],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.backups = backups
        self.events = events
        self.gate = gate
        self.quiesce = quiesce  # stop background writers (lifecycle, snapshots) before writing
        self.reload = reload  # re-read every in-memory index from the store
        self.clock = clock
        self._jobs: dict[str, RestoreJob] = {}
        self._lock = threading.Lock()
        self._running = threading.Lock()

    def status(self, restore_id: str) -> RestoreJob:
        """One job's status (404 when unknown)."""
        job = self._jobs.get(restore_id)
        if job is None:
            raise JobNotFound(f"restore '{restore_id}' not found", resource="restore")
        return job

    def start(
        self,
        backup_id: Any,
        *,
        target_namespaces: Any = None,
        overwrite: Any = None,
        dry_run: Any = None,
        point_in_time: Any = None,
        wait: bool = False,
    ) -> RestoreJob:
        """Check everything that can be checked, then run the job (in a thread unless ``wait``)."""
        targets = _targets(target_namespaces)
        for name, value in (("overwrite", overwrite), ("dry_run", dry_run)):
            if value is not None and not isinstance(value, bool):
                raise InvalidInput(f"'{name}' must be true or false")
        if not isinstance(backup_id, str) or not backup_id:
            raise InvalidInput("'backup_id' is required")
        record = self.backups.get(backup_id)
        if point_in_time is not None and point_in_time != record.created_at:
            raise InvalidInput(
                "'point_in_time' is not supported: a backup restores the one instant it was "
                f"taken at ({record.created_at}); omit point_in_time"
            )
        verified = self.backups.verify(backup_id)
        missing = [t for t in targets or () if not _in_backup(t, verified)]
        if missing:
            raise InvalidInput(f"namespace '{missing[0]}' is not in backup '{backup_id}'")
        if targets is None and verified.namespaces is not None:
            targets = list(verified.namespaces)  # a subset backup replaces only its namespaces
        tables = (
            BACKED_UP_TABLES
            if verified.header.format_version >= ATTACHMENTS_SINCE
            else ROW_TABLES_V1
        )
        if not overwrite and not dry_run:
            _, present = plan_deletions(self.store, targets, tables)
            if any(present.values()):
                where = "these namespaces" if targets else "this server"
                raise Conflict(
                    f"{where} already hold data ({_describe(present)}); restore into an empty "
                    "server, or pass overwrite: true to replace it"
                )
        if not self._running.acquire(blocking=False):
            raise Conflict("another restore is running; wait for it to finish")
        job = RestoreJob(
            restore_id=f"rs_{int(self.clock())}_{secrets.token_hex(4)}",
            backup_id=backup_id,
            dry_run=bool(dry_run),
            overwrite=bool(overwrite),
            target_namespaces=targets,
            started_at=int(self.clock()),
            tables=tables,
        )
        with self._lock:
            self._jobs[job.restore_id] = job
            while len(self._jobs) > KEPT_JOBS:
                self._jobs.pop(next(iter(self._jobs)))
        if wait:
            self._run(job)
        else:
            threading.Thread(
                target=self._run, args=(job,), name="dakera-restore", daemon=True
            ).start()
        return job

    def _run(self, job: RestoreJob) -> None:
        started = time.perf_counter()
        try:
            if job.dry_run:
                job.phase = "counting"
                job.counts = self._count(job)
                _, job.replaced = plan_deletions(self.store, job.target_namespaces, job.tables)
            else:
                self._apply(job)
            job.status = "completed"
            job.phase = "done"
        except DakeraError as exc:
            job.status = "failed"
            job.errors.append(exc.message)
            logger.warning("restore %s failed: %s", job.restore_id, exc.message)
        finally:
            job.finished_at = int(self.clock())
            job.duration_ms = (time.perf_counter() - started) * 1000.0
            self._running.release()
        if job.status == "completed" and not job.dry_run:
            self.events.emit(
                "backup_restored",
                reason="restore",
                details={"backup_id": job.backup_id, "restore_id": job.restore_id,
                         "counts": job.counts},
            )  # fmt: skip

    def _count(self, job: RestoreJob) -> dict[str, int]:
        counts: dict[str, int] = {}
        for section, _row in self._rows(job):
            counts[section] = counts.get(section, 0) + 1
        size = sum(len(piece.data) for piece in self._pieces(job))
        if size or "attachments" in counts:
            counts["attachment_bytes"] = size
        return counts

    def _pieces(self, job: RestoreJob) -> Iterator[BlobPiece]:
        """The pieces of the attachment files the restore writes (its targets' only)."""
        path = self.backups.path_of(job.backup_id)
        with path.open("rb") as handle:
            for piece in BackupReader(handle, self.backups.codec).blob_pieces():
                if job.target_namespaces is None or piece.group in job.target_namespaces:
                    yield piece

    def _rows(self, job: RestoreJob) -> Iterator[tuple[str, StoredRow]]:
        path = self.backups.path_of(job.backup_id)
        with path.open("rb") as handle:
            for row in BackupReader(handle, self.backups.codec).rows():
                placement = place(row)
                if placement is not None and selected(placement, job.target_namespaces):
                    yield placement.section, row

    def _apply(self, job: RestoreJob) -> None:
        job.phase = "files"
        staged = StagedFiles(self.backups.blobs, seal=is_sealing(self.backups.codec))
        staged.stage(self._pieces(job))  # committed blobs, named by no record yet
        replaced_blobs: list[str] = []
        committed = False
        job.phase = "draining"
        self.gate.close("a restore is in progress; retry when it has finished")
        try:
            self.quiesce()
            job.phase = "writing"
            with self.backups.lock:
                deletions, job.replaced = plan_deletions(
                    self.store, job.target_namespaces, job.tables, replaced_blobs
                )
                counts: dict[str, int] = {}
                self.store.write_stream(self._batches(job, deletions, counts, staged))
                committed = True
                if staged.files:
                    counts["attachment_bytes"] = staged.bytes_written
                job.counts = counts
        finally:
            if not committed:
                staged.discard()
            # Also after a failed write (rolled back): background work restarts over the
            # store as it is, restored or untouched.
            job.phase = "reloading"
            try:
                self.reload()
            finally:
                try:
                    if committed:  # no record names them any more
                        for blob in replaced_blobs:
                            self.backups.blobs.delete(blob)
                finally:
                    self.gate.open()

    def _batches(
        self, job: RestoreJob, deletions: list[Op], counts: dict[str, int], staged: StagedFiles
    ) -> Iterator[list[Op]]:
        yield deletions
        batch: list[Op] = []
        for section, row in self._rows(job):
            counts[section] = counts.get(section, 0) + 1
            if row.table == "attachments":
                row = staged.rebind(row)  # the record names the blob just written
            batch.append(Op(kind="put", row=row))
            if len(batch) >= BATCH_ROWS:
                yield batch
                batch = []
        if job.target_namespaces is None:
            # A new version token: other processes re-read the restored keys.
            batch.append(Op.put("meta", "api_keys_version", secrets.token_bytes(8)))
        yield batch


def _targets(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidInput("'target_namespaces' must be a non-empty list of namespace names")
    return sorted(set(value))


def _in_backup(target: str, verified: VerifiedBackup) -> bool:
    return verified.namespaces is None or target in verified.namespaces


def _describe(present: dict[str, int]) -> str:
    return ", ".join(f"{count} {section}" for section, count in sorted(present.items()) if count)
