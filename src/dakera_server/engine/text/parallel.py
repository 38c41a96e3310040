"""One big embedding batch on several threads: the caller's plus helpers from a shared pool.

The MiniLM forward pass is 89% matrix products at about one core's FMA peak, so the second core
is the only lever left for a batch store (``threads.py``). numpy's BLAS releases the GIL, so
Python threads each running single-threaded BLAS use both cores without OpenBLAS's spinning
workers.

How the work is shared (:class:`ChunkRun`): every thread takes the next untaken chunk when it
finishes one, so a thread slowed down by other processes simply takes fewer. When none is left
untaken, the caller waits for the chunks helpers still hold -- each at most as long as its own
chunks took -- and computes a late one itself: a helper starved of CPU (they run at a lower
priority than request threads, so recall stays quick while a batch embeds) or one that failed
never holds the batch up, and never makes it fail. A chunk's rows are written once, by whoever
finishes it first; its vectors do not depend on the thread, so the result equals the sequential
one bit for bit.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

__all__ = ["MAX_HELPERS", "ChunkRun", "plan_chunks", "run_parallel"]

logger = logging.getLogger(__name__)

# At most this many pool threads help one batch (beside the caller's).
MAX_HELPERS = 7
# Helpers' CPU priority below request threads (nice +10: about a tenth of a core when they
# compete with one): measured with batch stores running during recalls on 2 cores, recall
# p50/p95 went from 16.7/28.5 ms with equal priority to 11.1/24.4 (10.5/18.2 with one thread).
HELPER_NICENESS = 10
# How long the caller waits for a helper's chunk when it has not timed its own yet.
DEFAULT_PATIENCE_SECONDS = 0.2

F32 = npt.NDArray[np.float32]
Forward = Callable[[list[list[int]]], F32]


def plan_chunks(ids: list[list[int]], batch_size: int, batch_tokens: int) -> list[list[int]]:
    """Split text indexes into forward-pass chunks: sorted by length (little padding), cut at
    ``batch_size`` texts or ``batch_tokens`` padded tokens."""
    n = len(ids)
    order = sorted(range(n), key=lambda i: len(ids[i]))
    chunks = []
    start = 0
    while start < n:
        stop = start + 1
        while stop < n and stop - start < batch_size:
            if (stop - start + 1) * len(ids[order[stop]]) > batch_tokens:
                break
            stop += 1
        chunks.append(order[start:stop])
        start = stop
    return chunks


class ChunkRun:
    """The chunks of one batch, shared by the caller (:meth:`lead`) and helpers (:meth:`help`)."""

    def __init__(
        self, chunks: list[list[int]], ids: list[list[int]], out: F32, forward: Forward
    ) -> None:
        self._chunks = chunks
        self._ids = ids
        self._out = out
        self._forward = forward
        self._cond = threading.Condition()
        self._next = 0
        self._filled = [False] * len(chunks)

    def _take(self) -> int | None:
        with self._cond:
            if self._next >= len(self._chunks):
                return None
            self._next += 1
            return self._next - 1

    def _run(self, index: int) -> None:
        chunk = self._chunks[index]
        vectors = self._forward([self._ids[i] for i in chunk])
        with self._cond:
            if not self._filled[index]:
                self._out[chunk] = vectors
                self._filled[index] = True
                self._cond.notify_all()

    def help(self) -> None:
        """A helper's part: untaken chunks until there are none (a failure is logged; the
        caller computes the chunk again)."""
        try:
            while (index := self._take()) is not None:
                self._run(index)
        except Exception:
            logger.exception("an embedding helper thread failed; the caller redoes its chunk")

    def lead(self) -> None:
        """The caller's part: untaken chunks, then every chunk still unwritten -- waited for
        as long as the caller's own chunks took on average, then computed here."""
        started = time.perf_counter()
        done = 0
        while (index := self._take()) is not None:
            self._run(index)
            done += 1
        patience = (time.perf_counter() - started) / done if done else DEFAULT_PATIENCE_SECONDS
        for index in range(len(self._chunks)):
            if not self._wait_filled(index, patience):
                self._run(index)

    def _wait_filled(self, index: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._filled[index], timeout=timeout)


def run_parallel(
    chunks: list[list[int]], ids: list[list[int]], out: F32, forward: Forward, workers: int
) -> None:
    """Fill ``out`` with ``forward`` of every chunk, on the caller's thread and ``workers - 1``
    helpers. Helpers still queued when the caller is done are cancelled (the pool is shared: a
    helper may wait behind another batch's)."""
    run = ChunkRun(chunks, ids, out, forward)
    helpers = [_helper_pool().submit(run.help) for _ in range(workers - 1)]
    try:
        run.lead()
    finally:
        for helper in helpers:
            helper.cancel()


@functools.cache
def _helper_pool() -> ThreadPoolExecutor:
    # Threads start on demand and idle ones are reused; one pool for every provider.
    return ThreadPoolExecutor(
        max_workers=MAX_HELPERS, thread_name_prefix="dakera-embed", initializer=_lower_priority
    )


def _lower_priority() -> None:
    """Helpers run at a lower CPU priority than request threads (``HELPER_NICENESS``)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HELPER_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not allowed: same priority then
        pass
