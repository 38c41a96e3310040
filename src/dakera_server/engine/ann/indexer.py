"""The background indexer: one thread that folds fresh vectors into HNSW graphs, a chunk at a time.

Why a thread: inserting into an HNSW graph costs 0.1-0.5 ms per 384-d vector at 100k vectors on
one core. Done inside the write request, it capped upserts near 2,000 vectors/s and made a
server that starts without an index snapshot build a whole graph before answering. Writes now
land in an exact segment, searchable at once (the store has them durably already), and this
thread moves them into the graph in small chunks; each chunk holds its index's write lock for
about ``CHUNK_SECONDS`` so searches and writes wait at most that long.

One thread for the process, whatever the number of indexes: the machine has two cores, and the
other one is serving requests. Only a long backlog (a bulk load, a start without a snapshot) is
inserted with hnswlib's threads on both cores (``adaptive.BULK_THREADS``).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from typing import Protocol

__all__ = ["CHUNK_SECONDS", "Indexer", "Steppable", "default_indexer"]

logger = logging.getLogger(__name__)

CHUNK_SECONDS = 0.02


class Steppable(Protocol):
    """An index with pending work: ``index_step`` does one bounded chunk of it."""

    def index_step(self) -> bool:
        """Index one chunk; returns whether work remains."""
        ...


class Indexer:
    """A queue of indexes with pending work, served round robin by one daemon thread.

    Indexes are held by weak reference: a dropped namespace or agent index is simply skipped.
    A failing step is logged and the index dropped from the queue (its vectors stay searchable
    in the exact segment); the next write to it queues it again.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[tuple[int, weakref.ref[Steppable]]] = deque()
        self._queued: set[int] = set()
        self._thread: threading.Thread | None = None

    def submit(self, index: Steppable) -> None:
        """Queue ``index`` for indexing (no-op when it is queued already)."""
        with self._cond:
            if id(index) in self._queued:
                return
            self._queued.add(id(index))
            self._queue.append((id(index), weakref.ref(index)))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ann-indexer", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                key, ref = self._queue.popleft()
            index = ref()
            if index is None:
                with self._cond:
                    self._queued.discard(key)
                continue
            try:
                more = index.index_step()
            except Exception:
                logger.exception("background indexing failed; the exact segment keeps serving")
                more = False
            with self._cond:
                if more:
                    self._queue.append((key, ref))
                else:
                    self._queued.discard(key)
            del index


_DEFAULT = Indexer()


def default_indexer() -> Indexer:
    """The process's indexer."""
    return _DEFAULT
