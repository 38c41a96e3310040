"""Vector index snapshots: what makes a restart fast, never what makes it correct.

The store is the truth. A snapshot is a namespace's ANN index as bytes plus the namespace
``uid`` and ``revision`` it was taken at and the ids it held. At start-up the engine loads it
only if the uid matches and the revision is not ahead of the store's, then replays every record
the store changed after that revision and deletes the ids the store no longer has
(``engine/vectors/engine.py``); anything that does not add up (bad checksum, wrong dimension, counts
that differ after the replay) falls back to rebuilding the index from the store.

Files live in ``DATA_DIR/snapshots/``, named by a hash of the namespace (no names on disk), and
are written atomically: temporary file, ``fsync``, ``rename``, ``fsync`` of the directory, so a
crash leaves either the old snapshot or the new one. Every byte goes through a ``PayloadCodec``
(the store's), so encryption at rest wraps snapshots exactly like records.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import orjson

from dakera_server.errors import StorageError
from dakera_server.storage.base import IdentityCodec, PayloadCodec

__all__ = ["IndexSnapshot", "SnapshotStore"]

logger = logging.getLogger("dakera_server.snapshots")

MAGIC = b"DKSNAP1\n"
CODEC_TABLE = "snapshots"


@dataclass(frozen=True)
class IndexSnapshot:
    """One namespace's index bytes and the state they reflect."""

    namespace: str
    uid: str
    revision: int
    dimension: int
    metric: str
    ids: list[str]
    index: bytes


class SnapshotStore:
    """Reads and writes ``IndexSnapshot`` files under one directory."""

    def __init__(self, directory: Path, codec: PayloadCodec | None = None) -> None:
        self.directory = directory
        self.codec = codec or IdentityCodec()
        directory.mkdir(parents=True, exist_ok=True)

    def path(self, namespace: str) -> Path:
        """The file of ``namespace``'s snapshot."""
        digest = hashlib.sha256(namespace.encode("utf-8")).hexdigest()[:32]
        return self.directory / f"{digest}.snap"

    def save(self, snapshot: IndexSnapshot) -> int:
        """Write ``snapshot`` atomically and durably; returns the bytes written."""
        header = orjson.dumps(
            {
                "namespace": snapshot.namespace,
                "uid": snapshot.uid,
                "revision": snapshot.revision,
                "dimension": snapshot.dimension,
                "metric": snapshot.metric,
                "ids": snapshot.ids,
                "crc32": zlib.crc32(snapshot.index),
                "size": len(snapshot.index),
            }
        )
        plain = b"".join([MAGIC, len(header).to_bytes(8, "little"), header, snapshot.index])
        data = self.codec.encode(CODEC_TABLE, snapshot.namespace, plain)
        target = self.path(snapshot.namespace)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        self._sync_directory()
        return len(data)

    def load(self, namespace: str) -> IndexSnapshot | None:
        """The snapshot of ``namespace``, or ``None`` when absent or unreadable.

        A damaged file is logged and ignored (the caller rebuilds from the store), never fatal.
        """
        target = self.path(namespace)
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            return None
        except OSError:
            logger.warning("index snapshot of a namespace could not be read; rebuilding")
            return None
        try:
            return self._parse(namespace, self.codec.decode(CODEC_TABLE, namespace, data))
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError, StorageError):
            # StorageError: written under another key (after a rotation) or before encryption.
            logger.warning("index snapshot of a namespace is damaged; rebuilding")
            return None

    @staticmethod
    def _parse(namespace: str, data: bytes) -> IndexSnapshot:
        if not data.startswith(MAGIC):
            raise ValueError("not a dakera index snapshot")
        start = len(MAGIC)
        size = int.from_bytes(data[start : start + 8], "little")
        header = orjson.loads(data[start + 8 : start + 8 + size])
        index = data[start + 8 + size :]
        if header["namespace"] != namespace:
            raise ValueError("snapshot belongs to another namespace")
        if len(index) != int(header["size"]) or zlib.crc32(index) != int(header["crc32"]):
            raise ValueError("snapshot checksum mismatch")
        ids = header["ids"]
        if not isinstance(ids, list):
            raise ValueError("snapshot ids are not a list")
        return IndexSnapshot(
            namespace=namespace,
            uid=str(header["uid"]),
            revision=int(header["revision"]),
            dimension=int(header["dimension"]),
            metric=str(header["metric"]),
            ids=[str(x) for x in ids],
            index=index,
        )

    def remove(self, namespace: str) -> None:
        """Delete ``namespace``'s snapshot (absent is fine)."""
        self.path(namespace).unlink(missing_ok=True)
        self._sync_directory()

    def _sync_directory(self) -> None:
        # The rename/unlink itself must survive a crash, so the directory entry is synced too.
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
