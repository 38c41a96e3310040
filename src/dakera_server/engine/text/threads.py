"""How many threads numeric work may use, set once at start-up (process-wide).

Two separate knobs, because they behave differently on a small shared machine:

* ``DAKERA_NUMERIC_THREADS`` caps numpy's BLAS. OpenBLAS starts one worker per core and spins
  them on every matrix product. On the project's 2-core machine shared with other processes,
  that made one query embedding take 13 ms at p50 and 333 ms at p95, against 6.3 / 6.6 ms with
  one thread; a 256-text batch ran at 33 texts/s against 98 (measured side by side under the
  same load, docs/benchmarks.md). Recall's latency target (p95 <= 30 ms) is out of reach with
  the default, so the server pins it; 0 keeps the default.
* ``DAKERA_EMBEDDING_THREADS`` spreads the chunks of one big embedding batch over that many
  Python threads, each running single-threaded BLAS (which releases the GIL). Nothing spins:
  a thread that finds no chunk left stops, and a single text never leaves its caller's thread,
  so single stores and recalls cost what they did. With the second core free a 500-text batch
  embeds 1.9x faster; with it busy, about as fast as one thread (where 2 BLAS threads fell to
  a third). 0 means one per usable core.
"""

from __future__ import annotations

import os

from threadpoolctl import threadpool_info, threadpool_limits

__all__ = [
    "blas_description",
    "embedding_threads",
    "limit_numeric_threads",
    "set_embedding_threads",
    "usable_cores",
]

_embedding_threads = 0


def blas_description() -> str:
    """``openblas Haswell, 1 thread(s)`` -- for the start-up log: the kernel family matters
    (``OPENBLAS_CORETYPE``; AVX-512 kernels embed about 1.6x faster than AVX2 ones where the
    CPU has them)."""
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            return (
                f"{info.get('internal_api')} {info.get('architecture')}, "
                f"{info.get('num_threads')} thread(s)"
            )
    return "no BLAS found"


def limit_numeric_threads(threads: int) -> None:
    """Cap BLAS threads process-wide at ``threads`` (0: leave the library's default)."""
    if threads > 0:
        threadpool_limits(limits=threads, user_api="blas")


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def set_embedding_threads(threads: int) -> None:
    """How many threads one embedding batch may use (0: one per usable core)."""
    global _embedding_threads
    _embedding_threads = max(0, threads)


def embedding_threads() -> int:
    """The threads one embedding batch may use now (at least 1)."""
    return _embedding_threads or usable_cores()
