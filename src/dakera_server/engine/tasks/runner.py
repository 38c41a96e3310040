"""A bounded queue of background tasks served by a few worker threads.

A submitted task waits in a queue of at most ``max_queued`` entries (a full queue refuses with
503 + ``Retry-After``, so a client backs off instead of piling work up) and runs on one of
``workers`` threads. Imports embed whole documents, which keeps a core busy: one worker by
default leaves the other core to requests. A task's function reports progress on the ``Task``
it gets; a ``DakeraError`` it raises becomes the failed task's ``error`` (its status and code,
as the synchronous request would have answered), anything else an ``INTERNAL_ERROR`` with the
traceback in the server log only.
"""

from __future__ import annotations

import itertools
import logging
import queue
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dakera_server.errors import DakeraError, JobNotFound, Unavailable

__all__ = ["Task", "TaskRunner"]

logger = logging.getLogger("dakera_server.tasks")

KEEP_FINISHED = 1000
STOP_WAIT_SECONDS = 10.0


@dataclass
class Task:
    """One background job as the job routes show it."""

    id: str
    job_type: str
    created_at: int
    metadata: dict[str, str]
    status: str = "Pending"
    progress: int = 0
    message: str | None = None
    started_at: int | None = None
    completed_at: int | None = None
    error: dict[str, Any] | None = None
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        """Whether the task reached a final state."""
        return self.status in ("Completed", "Failed", "Cancelled")

    def report(self, done: int, total: int, message: str) -> None:
        """Progress from the running task (``done`` of ``total`` units, as a percentage)."""
        self.progress = 100 if total <= 0 else min(99, int(100 * done / total))
        self.message = message

    def to_wire(self) -> dict[str, Any]:
        """The job object of dakera-api.md §5.1 (``error`` only on a failed task)."""
        wire: dict[str, Any] = {
            "id": self.id,
            "job_id": self.id,
            "job_type": self.job_type,
            "status": self.status,
            "progress": self.progress,
            "message": self.message,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "metadata": dict(self.metadata),
        }
        if self.error is not None:
            wire["error"] = dict(self.error)
        return wire


Work = Callable[[Task], None]


class TaskRunner:
    """Runs submitted tasks in the background; see the module docstring."""

    def __init__(
        self,
        *,
        workers: int = 1,
        max_queued: int = 64,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self._queue: queue.Queue[tuple[Task, Work] | None] = queue.Queue(maxsize=max_queued)
        self._tasks: OrderedDict[str, Task] = OrderedDict()
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._prefix = secrets.token_hex(4)
        self._closed = False
        self._threads = [
            threading.Thread(target=self._serve, name=f"dakera-task-{i}", daemon=True)
            for i in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job_type: str, metadata: dict[str, str], work: Work) -> Task:
        """Queue ``work``; returns its task at once (503 when the queue is full)."""
        task = Task(
            id=f"job_{self._prefix}_{next(self._counter)}",
            job_type=job_type,
            created_at=int(self.clock()),
            metadata=metadata,
        )
        with self._lock:
            if self._closed:
                raise Unavailable("the server is shutting down")
            try:
                self._queue.put_nowait((task, work))
            except queue.Full:
                raise Unavailable(
                    "too many background jobs are waiting; retry shortly",
                    retry_after=2,
                    details="job queue",
                ) from None
            self._tasks[task.id] = task
            self._trim()
        return task

    def get(self, task_id: str, job_type: str | None = None) -> Task:
        """A task by id (``JobNotFound`` if unknown, finished long ago, or of another type)."""
        with self._lock:
            task = self._tasks.get(task_id)
        if task is None or (job_type is not None and task.job_type != job_type):
            raise JobNotFound(f"job '{task_id}' not found", resource="job")
        return task

    def tasks(self) -> list[Task]:
        """Every task still held, oldest first."""
        with self._lock:
            return list(self._tasks.values())

    def wait(self, task_id: str, timeout: float) -> Task:
        """Block until the task is done or ``timeout`` passes (tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        task = self.get(task_id)
        while not task.done and time.monotonic() < deadline:
            time.sleep(0.01)
        return task

    def close(self) -> None:
        """Stop taking tasks, cancel those waiting and let the running ones finish (bounded)."""
        with self._lock:
            self._closed = True
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].status = "Cancelled"
                item[0].completed_at = int(self.clock())
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _trim(self) -> None:
        finished = [k for k, t in self._tasks.items() if t.done]
        for key in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._tasks[key]

    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            task, work = item
            self._run(task, work)

    def _run(self, task: Task, work: Work) -> None:
        task.status = "Running"
        task.started_at = int(self.clock())
        try:
            work(task)
        except DakeraError as exc:
            task.status = "Failed"
            task.error = {"status": exc.status, "code": exc.code, "message": exc.message}
            if exc.details:
                task.error["details"] = exc.details
        except Exception:  # the boundary of a background thread: log, report, keep serving
            logger.exception("background job %s (%s) failed", task.id, task.job_type)
            task.status = "Failed"
            task.error = {"status": 500, "code": "INTERNAL_ERROR", "message": "internal error"}
        else:
            task.status = "Completed"
            task.progress = 100
        task.completed_at = int(self.clock())
