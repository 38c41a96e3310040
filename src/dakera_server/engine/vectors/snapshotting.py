"""The background writer of namespace index snapshots, so a restart does not rebuild graphs.

Every ``interval`` seconds it snapshots the namespaces whose revision moved since their last
snapshot and that hold at least ``SNAPSHOT_MIN_VECTORS`` vectors (smaller ones rebuild from the
store in well under a second); at shutdown every changed namespace is written. A snapshot is a
cache: ``load.py`` trusts one only as far as the store confirms it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from dakera_server.engine.ann.snapshots import SnapshotStore
from dakera_server.engine.vectors.load import snapshot_of
from dakera_server.engine.vectors.namespace import VectorNamespace

__all__ = ["SNAPSHOT_INTERVAL_SECONDS", "SNAPSHOT_MIN_VECTORS", "NamespaceSnapshotter"]

logger = logging.getLogger("dakera_server.vectors")

SNAPSHOT_INTERVAL_SECONDS = 30.0
SNAPSHOT_MIN_VECTORS = 1000  # smaller namespaces rebuild from the store in well under a second


class NamespaceSnapshotter:
    """Writes snapshots of the namespaces ``held()`` returns, in a thread of its own."""

    def __init__(
        self,
        snapshots: SnapshotStore,
        held: Callable[[], list[VectorNamespace]],
        interval: float = SNAPSHOT_INTERVAL_SECONDS,
    ) -> None:
        self.snapshots = snapshots
        self.interval = interval
        self._held = held
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the periodic writer (no-op with interval 0 or when running)."""
        if self.interval > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="dakera-snapshots", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the periodic writer and wait for it; ``start`` may run it again."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._stop.clear()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.write()
            except OSError:
                logger.exception("writing index snapshots failed; will retry")

    def write(self, *, force: bool = False) -> int:
        """Snapshot namespaces whose revision moved since their last snapshot; returns how
        many were written. Without ``force``, namespaces under 1000 vectors are skipped."""
        written = 0
        for namespace in self._held():
            if namespace.snapshot_revision == namespace.info.revision:
                continue
            if not force and namespace.vector_count() < SNAPSHOT_MIN_VECTORS:
                continue
            with namespace.lock:
                if namespace.deleted:
                    continue
                snapshot = snapshot_of(namespace)
            if snapshot is None:
                continue
            self.snapshots.save(snapshot)
            namespace.snapshot_revision = snapshot.revision
            written += 1
        return written
