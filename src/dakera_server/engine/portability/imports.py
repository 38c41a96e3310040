"""Import jobs: rows checked one by one, stored in embedding batches, resumable and idempotent.

* **Per row, all or nothing.** Each row is read (``formats.py``), checked by the request
  layer's field rules (``check_row``, injected: ids, tags, injection detectors), then by the
  memory write rules (``validate_new``: content, limits, types). A bad row is reported with
  its number and stored in no part; the others go on.
* **Batches.** Good rows go to ``MemoryEngine.insert`` ``BATCH_ROWS`` at a time: one
  embedding pass and one durable transaction per batch.
* **Idempotent.** The job id is a hash of (agent, conflict mode, file bytes). Rows without an
  id get one derived from the job id and the row number, so importing the same file again
  never duplicates; a finished job for the same file is answered as it is.
* **Resumable.** After each committed batch the job's progress is persisted (store meta
  ``import.job.<id>``); the same file posted again after a crash continues after the last
  committed batch.
* **Conflicts** with an id the agent already holds: ``skip`` (default) keeps the stored one,
  ``overwrite`` replaces it, ``new_ids`` imports the row under a new id.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from dakera_server.engine.access import Caller
from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.models import EVENT_TIME_KEY, Memory
from dakera_server.engine.memory.writes import NewMemory, validate_new
from dakera_server.engine.portability.formats import ParsedRow, RowError, parse_rows
from dakera_server.engine.rules import RESERVED_TAG, check_agent_id
from dakera_server.errors import DakeraError, InvalidInput, JobNotFound, NamespaceAccessDenied
from dakera_server.storage.base import Op, Store

__all__ = ["CONFLICT_MODES", "ImportJob", "ImportManager"]

logger = logging.getLogger("dakera_server.imports")
CONFLICT_MODES = ("skip", "overwrite", "new_ids")
BATCH_ROWS = 256
SYNC_ROWS = 2000  # above this many rows the request answers at once with a running job
MAX_ERRORS = 1000
META_PREFIX = "import.job."
# Metadata the server itself writes on memories: an export carries it, an import restores it.
CARRIED_METADATA = frozenset(
    {"_dakera_decay", "_dakera_decay_flag", "_dakera_feedback", "_dakera_feedback_counts",
     "_dakera_embedding_models", "_dakera_content_date", "_dakera_lang"}
)  # fmt: skip
TIME_FIELDS = ("created_at", "updated_at", "last_accessed_at")
RowCheck = Callable[[dict[str, Any]], None]


@dataclass
class ImportJob:
    """One import's state: the wire object of ``/v1/import`` and its status route."""

    job_id: str
    agent_id: str
    format: str
    conflict: str
    total: int
    started_at: int
    status: str = "running"
    imported: int = 0
    skipped: int = 0
    failed: int = 0
    processed: int = 0
    errors: list[str] = field(default_factory=list)
    finished_at: int | None = None
    resumed_from: int = 0

    def to_wire(self) -> dict[str, Any]:
        """``{"job_id","status","format","total","imported","skipped","errors",...}``."""
        wire = asdict(self)
        wire["status"] = "done" if self.status == "done" else self.status
        return wire

    def error(self, row: int, message: str) -> None:
        """Record a refused row (the first ``MAX_ERRORS`` messages are kept)."""
        self.failed += 1
        self.skipped += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(f"row {row}: {message}")


class ImportManager:
    """Runs import jobs into agents through the memory engine."""

    def __init__(self, memories: MemoryEngine, store: Store, events: EventBus) -> None:
        self.memories = memories
        self.store = store
        self.events = events
        self._jobs: dict[str, ImportJob] = {}
        self._active: set[str] = set()
        self._lock = threading.Lock()

    def status(self, caller: Caller, job_id: str) -> ImportJob:
        """A job the caller may see (404 otherwise, including jobs of other tenants)."""
        job = self._jobs.get(job_id)
        if job is None and (job := self._persisted(job_id)) is not None:
            if job.status == "running":  # its process died: say so, and how to go on
                job.status = "failed"
                job.errors.append(
                    f"interrupted by a server restart after {job.processed} rows; post the "
                    "same file again to resume"
                )
        if job is None or not caller.can_see_agent(job.agent_id):
            raise JobNotFound(f"import job '{job_id}' not found", resource="job")
        return job

    def _persisted(self, job_id: str) -> ImportJob | None:
        if not isinstance(job_id, str) or not job_id.startswith("imp_"):
            return None
        row = self.store.get_row("meta", META_PREFIX + job_id)
        return None if row is None else ImportJob(**orjson.loads(row.payload))

    def start(
        self,
        caller: Caller,
        agent_id: Any,
        data: bytes,
        *,
        fmt: str | None,
        conflict: Any = None,
        check_row: RowCheck,
        wait: bool | None = None,
    ) -> ImportJob:
        """Parse ``data`` and import it into ``agent_id``; small inputs finish before this
        returns, larger ones run in a thread (``wait`` forces either)."""
        agent_id = check_agent_id(agent_id)
        if not caller.can_see_agent(agent_id):
            raise NamespaceAccessDenied(f"this key may not write agent '{agent_id}'")
        mode = "skip" if conflict in (None, "") else conflict
        if mode not in CONFLICT_MODES:
            raise InvalidInput(f"'conflict' must be one of {', '.join(CONFLICT_MODES)}")
        if not data.strip():
            raise InvalidInput("the import file is empty")
        chosen, parsed = parse_rows(data, fmt)
        rows = list(parsed)
        digest = hashlib.sha256(f"{agent_id}\0{mode}\0".encode() + data).hexdigest()
        job_id = f"imp_{digest[:24]}"
        with self._lock:
            if job_id in self._active:
                return self._jobs[job_id]
            previous = self._jobs.get(job_id) or self._persisted(job_id)
            if previous is not None and previous.status == "done":
                return previous
            job = ImportJob(job_id, agent_id, chosen, mode, len(rows), int(self.memories.clock()))
            if previous is not None:  # interrupted (a crash): continue after its last batch
                job = previous
                job.status = "running"
                job.resumed_from = previous.processed
            self._jobs[job_id] = job
            self._active.add(job_id)
        if wait if wait is not None else len(rows) <= SYNC_ROWS:
            self._run(caller, job, rows, check_row)
        else:
            threading.Thread(
                target=self._run,
                args=(caller, job, rows, check_row),
                name="dakera-import",
                daemon=True,
            ).start()
        return job

    # ------------------------------------------------------------------ the job
    def _run(
        self, caller: Caller, job: ImportJob, rows: list[ParsedRow | RowError], check: RowCheck
    ) -> None:
        try:
            batch: list[tuple[int, Memory]] = []
            for index in range(job.processed, len(rows)):
                item = rows[index]
                if isinstance(item, RowError):
                    job.error(item.row, item.message)
                else:
                    memory = self._memory(job, item, check)
                    if memory is not None:
                        if any(m.id == memory.id for _, m in batch):
                            self._commit(caller, job, batch, index)
                            batch = []
                        batch.append((index, memory))
                if len(batch) >= BATCH_ROWS:
                    self._commit(caller, job, batch, index + 1)
                    batch = []
            self._commit(caller, job, batch, len(rows))
            job.status = "done" if job.imported or not job.failed else "failed"
        except DakeraError as exc:
            job.status = "failed"
            job.errors.append(f"the import stopped: {exc.message}")
            logger.warning("import %s stopped: %s", job.job_id, exc.message)
        finally:
            job.finished_at = int(self.memories.clock())
            self._save(job)
            with self._lock:
                self._active.discard(job.job_id)
        self.events.emit(
            "import_completed",
            agent_id=job.agent_id,
            reason=job.status,
            details={"job_id": job.job_id, "format": job.format, "imported": job.imported,
                     "skipped": job.skipped, "failed": job.failed},
        )  # fmt: skip

    def _save(self, job: ImportJob) -> None:
        self.store.write([Op.put("meta", META_PREFIX + job.job_id, orjson.dumps(asdict(job)))])

    def _commit(
        self, caller: Caller, job: ImportJob, batch: list[tuple[int, Memory]], processed: int
    ) -> None:
        """Store one batch (conflicts resolved against what the agent holds now) and persist
        the progress with it, in the same transaction."""
        agent = self.memories.agent(caller, job.agent_id)
        held = {} if agent is None else agent.memories
        fresh: list[Memory] = []
        for index, memory in batch:
            if memory.id in held:
                if job.conflict == "skip":
                    job.skipped += 1
                    continue
                if job.conflict == "new_ids":
                    memory.id = _derived_id(job.job_id, index, "renamed")
            fresh.append(memory)
        job.processed = processed
        progress = Op.put("meta", META_PREFIX + job.job_id, orjson.dumps(asdict(job)))
        if fresh:
            self.memories.insert(caller, fresh, [progress], keep_times=True)
            job.imported += len(fresh)
        else:
            self.store.write([progress])

    def _memory(self, job: ImportJob, item: ParsedRow, check: RowCheck) -> Memory | None:
        """The row as a validated memory, or ``None`` after recording why it was refused."""
        record = dict(item.record)
        try:
            check(record)
            memory = _validated(job, item.row, record, self.memories)
        except DakeraError as exc:
            job.error(item.row, exc.message)
            return None
        return memory


def _derived_id(job_id: str, index: int, salt: str = "") -> str:
    """A stable id for a row without one (same file, same id: re-imports do not duplicate)."""
    return "mem_" + hashlib.sha256(f"{job_id}/{index}/{salt}".encode()).hexdigest()[:24]


def _whole(record: dict[str, Any], name: str) -> int | None:
    value = record.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"'{name}' must be Unix seconds (a whole number)")
    return value


def _validated(job: ImportJob, row: int, record: dict[str, Any], engine: MemoryEngine) -> Memory:
    metadata = record.get("metadata")
    carried: dict[str, Any] = {}
    event_time = record.get("event_time")
    if isinstance(metadata, dict):
        carried = {k: v for k, v in metadata.items() if k in CARRIED_METADATA}
        if event_time is None and isinstance(metadata.get(EVENT_TIME_KEY), int):
            event_time = metadata[EVENT_TIME_KEY]
        drop = set(carried) | {EVENT_TIME_KEY}
        metadata = {k: v for k, v in metadata.items() if k not in drop} or None
    tags = record.get("tags")
    curated = isinstance(tags, list) and RESERVED_TAG in tags
    if isinstance(tags, list) and curated:
        tags = [t for t in tags if t != RESERVED_TAG]
    raw_id = record.get("id")
    memory = validate_new(
        NewMemory(
            agent_id=job.agent_id,
            content=record.get("content"),
            memory_type=record.get("memory_type"),
            importance=record.get("importance"),
            tags=tags,
            metadata=metadata,
            session_id=record.get("session_id"),
            ttl_seconds=record.get("ttl_seconds"),
            expires_at=record.get("expires_at"),
            event_time=event_time,
            id=_derived_id(job.job_id, row) if raw_id in (None, "") else raw_id,
        ),
        int(engine.clock()),
        max_content_bytes=engine.max_content_bytes,
        default_ttl=engine.default_ttl,
    )
    if carried:
        memory.metadata = {**(memory.metadata or {}), **carried}
    if curated:
        memory.tags.append(RESERVED_TAG)
    for name in TIME_FIELDS:
        value = _whole(record, name)
        if value is not None:
            setattr(memory, name, value)
    if record.get("updated_at") is None and record.get("created_at") is not None:
        memory.updated_at = memory.created_at
    if record.get("last_accessed_at") is None and record.get("created_at") is not None:
        memory.last_accessed_at = memory.created_at
    count = _whole(record, "access_count")
    if count is not None:
        memory.access_count = count
    return memory
