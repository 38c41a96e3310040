"""Blob storage: large opaque byte streams (attachment files) beside the record store.

Records stay in the ``Store`` (small, transactional, encrypted per record); the bytes of an
attachment can be hundreds of megabytes, so they are written and read as streams of chunks
and never held whole in memory. The engine seals the chunks before they get here when
encryption at rest is on: a blob store only ever sees what it must persist.

Contract (every backend: ``FileBlobStore`` now, a PostgreSQL large-object store later):

* ``create()`` returns a ``BlobWriter``; bytes appended to it are invisible until ``commit``,
  which returns only once they are durable. ``abort`` (or an exception before ``commit``)
  leaves nothing behind.
* ``read(name)`` yields the committed bytes in order, in chunks of at most ``CHUNK_BYTES``;
  memory use does not grow with the blob.
* ``delete(name)`` removes a blob (absent is fine); ``names()`` lists committed blobs, so a
  start-up sweep can remove those no record points to (a crash between the two writes).
* ``hold_deletes()``: while held, ``delete`` only notes the name and the blob is removed when
  the last hold is released. An online backup holds deletes from before its store snapshot to
  its end: a record in the snapshot may be deleted meanwhile (the engine deletes the blob right
  after the record's delete commits), and its bytes must still be readable for the backup.
  A store whose snapshot reads blobs itself (PostgreSQL, ``StoreSnapshot.read_blob``) needs no
  hold and keeps the default, which holds nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from dakera_server.errors import NotFound, StorageError

__all__ = ["CHUNK_BYTES", "BlobStore", "BlobWriter", "FileBlobStore"]

CHUNK_BYTES = 1 << 16
NAME = re.compile(r"^[0-9a-f]{32}$")


class BlobWriter(ABC):
    """An uncommitted blob being appended to."""

    name: str
    """The name the blob will have once committed (chosen by the store, random)."""

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Append ``data``."""

    @abstractmethod
    def commit(self) -> str:
        """Make the blob durable and visible; returns its name."""

    @abstractmethod
    def abort(self) -> None:
        """Drop everything written (idempotent; a no-op after ``commit``)."""


class BlobStore(ABC):
    """Durable named byte streams; see the module docstring for the contract."""

    @abstractmethod
    def create(self) -> BlobWriter:
        """A writer for a new blob (its name is chosen by the store)."""

    @abstractmethod
    def read(self, name: str) -> Iterator[bytes]:
        """The blob's bytes in order, chunk by chunk (``NotFound`` if it does not exist)."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove a blob; absent is fine."""

    @abstractmethod
    def names(self) -> list[str]:
        """Every committed blob."""

    def hold_deletes(self) -> contextlib.AbstractContextManager[None]:
        """Defer deletes until released (see the module docstring); this default holds
        nothing: for stores whose snapshots read blobs at their own instant."""
        return contextlib.nullcontext()


class _FileWriter(BlobWriter):
    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self.temp = root / "tmp" / f"{name}.part"
        self._file = self.temp.open("xb")
        self._done = False

    def write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            self.abort()
            raise StorageError("the attachment could not be written") from exc

    def commit(self) -> str:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            final = self.root / self.name[:2] / self.name
            final.parent.mkdir(exist_ok=True)
            os.replace(self.temp, final)
            _fsync_dir(final.parent)
        except OSError as exc:
            self.abort()
            raise StorageError("the attachment could not be written") from exc
        self._done = True
        return self.name

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.temp.unlink()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileBlobStore(BlobStore):
    """Blobs as files under ``root`` (``root/ab/abcd…``), written to ``root/tmp`` first and
    renamed into place after ``fsync``, so a crash leaves a whole blob or none."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        for stale in (root / "tmp").glob("*.part"):  # writers a crash interrupted
            stale.unlink()
        self._holds = 0
        self._deferred: set[str] = set()
        self._hold_lock = threading.Lock()

    def _path(self, name: str) -> Path:
        if not NAME.fullmatch(name):
            raise StorageError("a blob name is malformed")
        return self.root / name[:2] / name

    def create(self) -> BlobWriter:
        return _FileWriter(self.root, secrets.token_hex(16))

    def read(self, name: str) -> Iterator[bytes]:
        path = self._path(name)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise NotFound("the attachment's bytes are missing", resource="attachment") from None
        return _chunks(handle)

    def delete(self, name: str) -> None:
        path = self._path(name)
        with self._hold_lock:
            if self._holds:
                self._deferred.add(name)
                return
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def names(self) -> list[str]:
        return [
            path.name
            for path in self.root.glob("??/*")
            if path.is_file() and NAME.fullmatch(path.name)
        ]

    @contextlib.contextmanager
    def hold_deletes(self) -> Iterator[None]:
        """Blobs deleted while held stay on disk until the last hold ends (a backup reads
        them); then they go. A crash meanwhile leaves them to the start-up orphan sweep."""
        with self._hold_lock:
            self._holds += 1
        try:
            yield
        finally:
            with self._hold_lock:
                self._holds -= 1
                due = sorted(self._deferred) if not self._holds else []
                if not self._holds:
                    self._deferred.clear()
            for name in due:
                self.delete(name)


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk
