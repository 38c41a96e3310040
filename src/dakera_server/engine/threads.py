"""How many threads numpy's BLAS may use (``DAKERA_NUMERIC_THREADS``), set once at start-up.

OpenBLAS starts one worker per core and spins them on every matrix product. On the project's
2-core machine shared with other processes, that made one query embedding take 13 ms at p50 and
333 ms at p95, against 6.3 / 6.6 ms with one thread; a 256-text batch ran at 33 texts/s against
98 (measured side by side under the same load, docs/benchmarks.md). Recall's latency target
(p95 <= 30 ms) is out of reach with the default, so the server pins it; 0 keeps the default.
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits

__all__ = ["limit_numeric_threads"]


def limit_numeric_threads(threads: int) -> None:
    """Cap BLAS threads process-wide at ``threads`` (0: leave the library's default)."""
    if threads > 0:
        threadpool_limits(limits=threads, user_api="blas")
