"""Start-up of one namespace: records from the store, the ANN index from its snapshot.

The snapshot is trusted only as far as the store confirms it (``engine/ann/snapshots.py``):

1. it must belong to the same namespace life (``uid``), dimension and metric, and not be ahead
   of the store's revision;
2. ids the store no longer holds are deleted from it, records written after its revision (and
   any stored id it lacks) are upserted again from their stored vectors;
3. afterwards it must hold exactly the stored vector count, and a sample of vectors must equal
   the stored bytes.

Anything else rebuilds the index from the stored vectors, which is always correct, just slower
(HNSW construction instead of a memory copy).
"""

from __future__ import annotations

import logging
import random
import time

import numpy as np

from dakera_server.engine.ann import AdaptiveIndex, VectorIndex
from dakera_server.engine.ann.snapshots import IndexSnapshot, SnapshotStore
from dakera_server.engine.vectors.namespace import VectorNamespace, VectorRecord
from dakera_server.storage.base import Store

__all__ = ["load_namespace", "snapshot_of", "stored_matrix"]

logger = logging.getLogger("dakera_server.vectors")

SPOT_CHECKS = 16


def snapshot_of(namespace: VectorNamespace) -> IndexSnapshot | None:
    """The namespace's index as a snapshot; call under ``namespace.lock``."""
    info = namespace.info
    if namespace.index is None or info.dimension is None:
        return None
    return IndexSnapshot(
        namespace=info.name,
        uid=info.uid,
        revision=info.revision,
        dimension=info.dimension,
        metric=info.distance,
        ids=[r.id for r in namespace.records.values() if r.has_vector],
        index=namespace.index.to_bytes(),
    )


def load_namespace(
    store: Store, snapshots: SnapshotStore | None, namespace: VectorNamespace
) -> VectorNamespace:
    """Fill the (new, empty) ``namespace`` from the store and its snapshot (``None``: rebuild
    the index from the rows); returns it."""
    info = namespace.info
    blobs: dict[str, bytes] = {}
    texts: list[tuple[str, str]] = []
    for row in store.iter_rows("vectors", info.name):
        record = VectorRecord.from_payload(row.key, row.payload, row.vector is not None)
        namespace.put(record)
        if row.vector is not None:
            blobs[row.key] = row.vector
        if record.text is not None:
            texts.append((record.id, record.text))
    if texts:
        namespace.text.upsert(texts)
    if info.dimension is not None and blobs:
        namespace.index = _restore_index(namespace, blobs, snapshots)
    return namespace


def _restore_index(
    namespace: VectorNamespace, blobs: dict[str, bytes], snapshots: SnapshotStore | None
) -> VectorIndex:
    info = namespace.info
    assert info.dimension is not None
    snapshot = None if snapshots is None else snapshots.load(info.name)
    if snapshot is not None:
        index = _from_snapshot(namespace, snapshot, blobs)
        if index is not None:
            return index
        logger.warning("index snapshot of a namespace did not match the store; rebuilding")
    started = time.perf_counter()
    index = namespace.new_index(info.dimension, info.distance)
    ids, matrix = stored_matrix(list(blobs), blobs, info.dimension)
    if ids:
        index.upsert(ids, matrix)
    namespace.snapshot_revision = -1
    logger.info(
        "rebuilt the index of a namespace (%d vectors) in %.1f s",
        len(ids),
        time.perf_counter() - started,
    )
    return index


def _from_snapshot(
    namespace: VectorNamespace, snapshot: IndexSnapshot, blobs: dict[str, bytes]
) -> VectorIndex | None:
    info = namespace.info
    if (
        snapshot.uid != info.uid
        or snapshot.revision > info.revision
        or snapshot.dimension != info.dimension
        or snapshot.metric != info.distance
    ):
        return None
    try:
        index = AdaptiveIndex.from_bytes(snapshot.index)
    except (ValueError, KeyError, TypeError):
        return None
    if index.dimension != info.dimension or index.metric != info.distance:
        return None
    index.exact_threshold = namespace.threshold
    known = set(snapshot.ids)
    gone = known - blobs.keys()
    if gone:
        index.delete(gone)
    changed = [
        record.id
        for record in namespace.records.values()
        if record.has_vector and (record.rev > snapshot.revision or record.id not in known)
    ]
    if changed:
        ids, matrix = stored_matrix(changed, blobs, info.dimension)
        if len(ids) != len(changed):
            return None
        index.upsert(ids, matrix)
    if len(index) != len(blobs) or not _spot_check(index, blobs):
        return None
    namespace.snapshot_revision = snapshot.revision
    return index


def stored_matrix(
    ids: list[str], blobs: dict[str, bytes], dimension: int
) -> tuple[list[str], np.ndarray]:
    """Stored vectors of ``ids`` as one float32 matrix; a blob of the wrong size is skipped."""
    width = dimension * 4
    good = [i for i in ids if len(blobs[i]) == width]
    if len(good) != len(ids):
        logger.error("%d stored vectors have the wrong size and were skipped", len(ids) - len(good))
    joined = b"".join(blobs[i] for i in good)
    return good, np.frombuffer(joined, dtype=np.float32).reshape(len(good), dimension)


def _spot_check(index: VectorIndex, blobs: dict[str, bytes]) -> bool:
    sample = random.Random(0).sample(sorted(blobs), min(SPOT_CHECKS, len(blobs)))
    for record_id in sample:
        held = index.get_vector(record_id)
        stored = np.frombuffer(blobs[record_id], dtype=np.float32)
        if held is None or held.shape != stored.shape:
            return False
        if not np.allclose(held, stored, rtol=1e-4, atol=1e-5):
            return False
    return True
