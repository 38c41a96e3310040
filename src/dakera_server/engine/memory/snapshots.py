"""Snapshots of agents' vector indexes, so a restart with many memories stays fast.

Only agents large enough for HNSW get one (an exact index is a matrix copy, rebuilt in
milliseconds). A snapshot holds the index bytes, the ids and a CRC-32 of every stored vector it
reflects. At start-up the stored vectors are compared with those CRCs: changed or missing ids
are upserted again, ids the store no longer has are deleted. The store stays the truth; a
snapshot that does not decode, or whose dimension differs, is ignored and the index rebuilt.
"""

from __future__ import annotations

import logging
import zlib

import numpy as np

from dakera_server.engine.access import agent_namespace
from dakera_server.engine.ann import AdaptiveIndex, VectorIndex
from dakera_server.engine.ann.snapshots import IndexSnapshot, SnapshotStore

__all__ = ["restore_agent_index", "save_agent_index"]

logger = logging.getLogger("dakera_server.memories")
UID = "agent-index-v1"


def _pack(index: VectorIndex, crcs: np.ndarray) -> bytes:
    body = crcs.astype("<u4").tobytes()
    return len(body).to_bytes(8, "little") + body + index.to_bytes()


def save_agent_index(
    snapshots: SnapshotStore, agent_id: str, index: VectorIndex, blobs: dict[str, bytes]
) -> None:
    """Write the snapshot of one agent's index; ``blobs`` are the stored vector bytes by id."""
    ids = list(blobs)
    crcs = np.fromiter((zlib.crc32(blobs[i]) for i in ids), dtype=np.uint32, count=len(ids))
    snapshots.save(
        IndexSnapshot(
            namespace=agent_namespace(agent_id),
            uid=UID,
            revision=0,
            dimension=index.dimension,
            metric=index.metric,
            ids=ids,
            index=_pack(index, crcs),
        )
    )


def restore_agent_index(
    snapshots: SnapshotStore, agent_id: str, dimension: int, blobs: dict[str, bytes]
) -> VectorIndex | None:
    """The agent's index from its snapshot, brought up to date with ``blobs``; None if unusable."""
    snapshot = snapshots.load(agent_namespace(agent_id))
    if snapshot is None or snapshot.uid != UID or snapshot.dimension != dimension:
        return None
    try:
        size = int.from_bytes(snapshot.index[:8], "little")
        crcs = np.frombuffer(snapshot.index[8 : 8 + size], dtype="<u4")
        index = AdaptiveIndex.from_bytes(snapshot.index[8 + size :])
    except (ValueError, KeyError, TypeError):
        logger.warning("index snapshot of an agent is damaged; rebuilding")
        return None
    if len(crcs) != len(snapshot.ids):
        return None
    known = dict(zip(snapshot.ids, crcs.tolist(), strict=True))
    gone = [i for i in known if i not in blobs]
    stale = [i for i, blob in blobs.items() if known.get(i) != zlib.crc32(blob)]
    if gone:
        index.delete(gone)
    if stale:
        matrix = np.stack([np.frombuffer(blobs[i], dtype=np.float32) for i in stale])
        index.upsert(stale, matrix)
    if len(index) != len(blobs):
        return None
    logger.info(
        "restored an agent index from its snapshot (%d vectors, %d replayed, %d dropped)",
        len(blobs),
        len(stale),
        len(gone),
    )
    return index
