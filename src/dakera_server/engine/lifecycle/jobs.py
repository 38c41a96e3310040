"""Background jobs: a registry for ``/ops/jobs``, CPU throttling, and resumption after a crash.

A lifecycle pass (decay, TTL sweep, deduplication, consolidation, compression) runs as a
``Job``. It works in small batches and calls ``JobContext.checkpoint()`` between them; the
checkpoint sleeps long enough that the pass uses at most ``cpu_share`` of one core (threads
cannot be ``nice``d, so the pass yields instead), and raises ``JobInterrupted`` once the server
is stopping.

Every batch a pass writes is one atomic store write, so a pass stopped anywhere — checkpoint,
``kill -9`` — leaves whole batches applied and nothing half-merged. A resumable job records a
marker (kind + parameters) in the store when it starts and deletes it when it ends; markers
still present at start-up are jobs that were cut short, and the scheduler runs them again.
Running a pass twice is harmless: it recomputes its work from the current state.

Jobs themselves live in memory (the wire contract says so: ``JOB_NOT_FOUND`` after a restart).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dakera_server.engine.lifecycle.state import StateStore
from dakera_server.errors import DakeraError, JobNotFound

__all__ = ["Job", "JobContext", "JobInterrupted", "JobRegistry"]

logger = logging.getLogger("dakera_server.lifecycle")

KEEP_FINISHED = 100
# Work at most this long before yielding: short slices hand the GIL (and the agent's lock)
# back to requests often, which is what keeps their tail latency down.
SLICE_SECONDS = 0.005
MARKER_PREFIX = "job."


class JobInterrupted(Exception):
    """Raised at a checkpoint when the server is stopping; the job resumes at next start."""


@dataclass
class Job:
    """One run of a lifecycle pass, as ``/ops/jobs`` shows it."""

    id: str
    kind: str
    params: dict[str, Any]
    created_at: int
    status: str = "queued"
    started_at: int | None = None
    finished_at: int | None = None
    processed: int = 0
    total: int = 0
    message: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    resumed_from: str | None = None

    @property
    def progress(self) -> float:
        """Fraction done, 0.0-1.0 (1.0 once completed); a pass over all agents reports the
        agent under way here and how many agents are done in ``message``."""
        if self.status == "completed":
            return 1.0
        return 0.0 if self.total <= 0 else min(1.0, self.processed / self.total)

    def to_wire(self) -> dict[str, Any]:
        """The job object of ``/ops/jobs`` (both ``type`` and ``job_type``: clients read either)."""
        wire: dict[str, Any] = {
            "id": self.id,
            "job_id": self.id,
            "type": self.kind,
            "job_type": self.kind,
            "status": self.status,
            "progress": round(self.progress, 4),
            "processed": self.processed,
            "total": self.total,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "params": self.params,
            "message": self.message,
            "result": self.result,
        }
        if self.resumed_from is not None:
            wire["resumed_from"] = self.resumed_from
        return wire


class JobContext:
    """Handed to a running pass: progress reporting, throttling, and the stop signal."""

    def __init__(self, job: Job, stop: threading.Event, cpu_share: float) -> None:
        self.job = job
        self._stop = stop
        self._share = cpu_share
        self._slice_started = time.perf_counter()

    def progress(self, processed: int, total: int | None = None) -> None:
        """Record how far the pass is."""
        self.job.processed = processed
        if total is not None:
            self.job.total = total

    def note(self, **result: Any) -> None:
        """Merge partial results into the job (visible while it runs)."""
        self.job.result.update(result)

    def checkpoint(self) -> None:
        """Yield the CPU for the pass's share, or raise ``JobInterrupted`` when stopping."""
        if self._stop.is_set():
            raise JobInterrupted
        worked = time.perf_counter() - self._slice_started
        if worked >= SLICE_SECONDS and self._share < 1.0:
            if self._stop.wait(worked * (1.0 - self._share) / self._share):
                raise JobInterrupted
            self._slice_started = time.perf_counter()
        elif worked >= SLICE_SECONDS:
            self._slice_started = time.perf_counter()


Pass = Callable[[JobContext], dict[str, Any]]


class JobRegistry:
    """Runs passes as jobs, one at a time, and remembers the last ``KEEP_FINISHED`` of them."""

    def __init__(self, state: StateStore, clock: Callable[[], float], *, cpu_share: float) -> None:
        self.state = state
        self.clock = clock
        self.cpu_share = cpu_share
        self.stop_event = threading.Event()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        # One heavy pass at a time: a trigger waits for a scheduled pass instead of racing it.
        self.pass_lock = threading.RLock()

    def run(
        self,
        kind: str,
        params: dict[str, Any],
        work: Pass,
        *,
        resumable: bool = False,
        resumed_from: str | None = None,
        throttle: bool = True,
    ) -> Job:
        """Run ``work`` now in this thread as a job; returns it (completed or interrupted).

        A ``DakeraError`` from the pass marks the job failed and propagates. ``throttle=False``
        is for passes a client waits on that are small by construction.
        """
        job = Job(
            id="job_" + secrets.token_hex(8),
            kind=kind,
            params=params,
            created_at=int(self.clock()),
            resumed_from=resumed_from,
        )
        self._remember(job)
        marker = MARKER_PREFIX + job.id
        with self.pass_lock:
            markers = [self.state.op(marker, {"kind": kind, "params": params})] if resumable else []
            if resumed_from is not None:  # one write: the job is never lost nor doubled
                markers.append(self.state.delete_op(MARKER_PREFIX + resumed_from))
            self.state.store.write(markers)
            job.status = "running"
            job.started_at = int(self.clock())
            context = JobContext(job, self.stop_event, self.cpu_share if throttle else 1.0)
            try:
                job.result.update(work(context))
                job.status = "completed"
                job.finished_at = int(self.clock())
            except JobInterrupted:
                job.status = "interrupted"
                job.message = "stopped with the server; resumes at the next start"
                job.finished_at = int(self.clock())
                return job
            except DakeraError as exc:
                job.status = "failed"
                job.message = exc.message
                job.finished_at = int(self.clock())
                if resumable:
                    self.state.store.write([self.state.delete_op(marker)])
                raise
            finally:
                if job.status == "running":  # an unexpected error is on its way out
                    job.status = "failed"
                    job.message = "internal error"
                    job.finished_at = int(self.clock())
            if resumable:
                self.state.store.write([self.state.delete_op(marker)])
        return job

    def _remember(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = job
            finished = [j.id for j in self._jobs.values() if j.finished_at is not None]
            for old in finished[: max(0, len(self._jobs) - KEEP_FINISHED)]:
                del self._jobs[old]

    def interrupted(self) -> list[tuple[str, str, dict[str, Any]]]:
        """``(job id, kind, params)`` of resumable jobs a previous run did not finish."""
        found = []
        for name in self.state.names(MARKER_PREFIX):
            document = self.state.load(name) or {}
            kind, params = document.get("kind"), document.get("params")
            if isinstance(kind, str) and isinstance(params, dict):
                found.append((name[len(MARKER_PREFIX) :], kind, params))
        return found

    def list(self) -> list[Job]:
        """Known jobs, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: (-j.created_at, j.id))

    def get(self, job_id: str) -> Job:
        """One job by id; ``JobNotFound`` when unknown (jobs do not survive a restart)."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"job '{job_id}' not found", resource="job")
        return job
