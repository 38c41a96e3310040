"""Online backups: take one at a consistent instant, list, describe, delete, receive, hand out.

A backup reads one ``Store.snapshot()`` (the consistency point: every write acknowledged before
it began is in it, writers never wait on it) and streams the rows through ``BackupWriter`` into
``<id>.dkbak.partial``; only after the file is complete and fsynced is it renamed and its
manifest (``<id>.json``) written, also atomically. The manifest is what makes a backup listed,
so a ``kill -9`` mid-backup leaves at most a ``.partial`` file that start-up deletes, never a
half backup listed as complete. Attachment files follow the rows (``files.py``), read at the
snapshot's instant: the blob store's deletes are held from before the snapshot to the end.

With encryption at rest on, the file is sealed with the store's key (``container.py``) and the
manifest keeps the backup's name and namespaces sealed too: nothing in the backups directory
names an agent, a memory or a tag in the clear.
"""

from __future__ import annotations

import gzip
import logging
import os
import secrets
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

import orjson

from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.portability.container import (
    BackupHeader,
    BackupReader,
    BackupWriter,
    VerifiedBackup,
    is_sealing,
    seal_key_check,
)
from dakera_server.engine.portability.files import write_files
from dakera_server.engine.portability.records import BackupRecord, check_backup_request
from dakera_server.engine.portability.sections import BACKED_UP_TABLES, place, selected
from dakera_server.engine.rules import MEMORY_ID_PATTERN
from dakera_server.errors import (
    BackupRejected,
    Conflict,
    InvalidInput,
    NotFound,
    StorageError,
)
from dakera_server.storage.base import PayloadCodec, Store, StoredRow
from dakera_server.storage.blobs import BlobStore

__all__ = [
    "BACKUP_SUFFIX",
    "BackupManager",
    "BackupRecord",
    "check_backup_request",
    "fsync_directory",
]

logger = logging.getLogger("dakera_server.backups")
BACKUP_SUFFIX = ".dkbak"
PARTIAL_SUFFIX = ".partial"
MANIFEST_SUFFIX = ".json"
DOWNLOAD_CHUNK = 1024 * 1024


# A backup of 100k memories is ~160 MB: one fsync of all of it at the end held a concurrent
# store's WAL fsync for ~50 ms; synced as it is written, each wait is short.
SYNC_EVERY_BYTES = 8 << 20


class Pacer:
    """Makes a long pure-Python loop step aside for request threads now and then.

    A backup is background work: it packs rows in Python, holding the GIL and one of the two
    cores, while a store wants the GIL at every step between its matrix products and both
    cores for its forward pass. Resting ``rest`` seconds after each ``work`` seconds gives them
    both; the backup takes about ``(work + rest) / work`` times as long (2 s → 4 s at 100k
    memories, target 10 s).
    """

    def __init__(self, work: float = 0.002, rest: float = 0.002) -> None:
        self.work = work
        self.rest = rest
        self._since = time.perf_counter()

    def __call__(self) -> None:
        if time.perf_counter() - self._since >= self.work:
            time.sleep(self.rest)
            self._since = time.perf_counter()


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BackupManager:
    """The backups directory of one server, and how backups are made from its store."""

    def __init__(
        self,
        store: Store,
        directory: Path,
        events: EventBus,
        *,
        server_version: str,
        codec: Callable[[], PayloadCodec],
        blobs: BlobStore,
        before_snapshot: Callable[[], object] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.blobs = blobs  # where attachment files live
        self.directory = directory
        self.events = events
        self.server_version = server_version
        self._codec = codec  # the store's codec now: a key rotation swaps it
        # Persist what the engine holds only in memory (access statistics) before the instant.
        self.before_snapshot = before_snapshot
        self.clock = clock
        self.lock = threading.Lock()  # one backup, upload or restore read at a time
        directory.mkdir(parents=True, exist_ok=True)
        self._cleanup()

    @property
    def codec(self) -> PayloadCodec:
        """The store's codec now (a key rotation swaps it)."""
        return self._codec()

    def _cleanup(self) -> None:
        """Delete what a crash left: partial files, manifests without their data."""
        for partial in self.directory.glob(f"*{PARTIAL_SUFFIX}"):
            logger.warning("removing an incomplete backup file left by a crash: %s", partial.name)
            partial.unlink(missing_ok=True)
        for manifest in self.directory.glob(f"*{MANIFEST_SUFFIX}"):
            if not manifest.with_suffix(BACKUP_SUFFIX).exists():
                manifest.unlink(missing_ok=True)

    # ------------------------------------------------------------------ reading
    def path_of(self, backup_id: str) -> Path:
        """The data file of a listed backup (404 when there is none)."""
        self.get(backup_id)
        return self.directory / f"{backup_id}{BACKUP_SUFFIX}"

    def get(self, backup_id: str) -> BackupRecord:
        """One backup's record, or 404."""
        if not isinstance(backup_id, str) or not MEMORY_ID_PATTERN.fullmatch(backup_id):
            raise NotFound(f"backup '{backup_id}' not found", resource="backup")
        manifest = self.directory / f"{backup_id}{MANIFEST_SUFFIX}"
        data = self.directory / f"{backup_id}{BACKUP_SUFFIX}"
        if not manifest.exists() or not data.exists():
            raise NotFound(f"backup '{backup_id}' not found", resource="backup")
        return self._read_manifest(manifest)

    def all(self) -> list[BackupRecord]:
        """Every completed backup, newest first."""
        records = []
        for manifest in self.directory.glob(f"*{MANIFEST_SUFFIX}"):
            if manifest.with_suffix(BACKUP_SUFFIX).exists():
                try:
                    records.append(self._read_manifest(manifest))
                except (StorageError, ValueError, KeyError, orjson.JSONDecodeError):
                    logger.warning("skipping an unreadable backup manifest: %s", manifest.name)
        records.sort(key=lambda r: (r.created_at, r.backup_id), reverse=True)
        return records

    def _read_manifest(self, path: Path) -> BackupRecord:
        raw = orjson.loads(path.read_bytes())
        private = raw.pop("private")
        if raw.get("sealed"):
            private = orjson.loads(
                self.codec.decode("backup-manifest", raw["backup_id"], bytes.fromhex(private))
            )
        return BackupRecord(**raw, name=private["name"], namespaces=private["namespaces"])

    def _write_manifest(self, record: BackupRecord) -> None:
        document = asdict(record)
        private = {"name": document.pop("name"), "namespaces": document.pop("namespaces")}
        sealed_private: Any = private
        if record.sealed:
            sealed_private = self.codec.encode(
                "backup-manifest", record.backup_id, orjson.dumps(private)
            ).hex()
        document["private"] = sealed_private
        final = self.directory / f"{record.backup_id}{MANIFEST_SUFFIX}"
        temporary = final.with_name(final.name + PARTIAL_SUFFIX)
        with temporary.open("wb") as handle:
            handle.write(orjson.dumps(document))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        fsync_directory(self.directory)

    # ------------------------------------------------------------------ creating
    def create(
        self,
        name: Any,
        *,
        namespaces: Any = None,
        compression: Any = None,
        backup_type: Any = None,
        encrypt: Any = None,
        trigger: str = "manual",
    ) -> BackupRecord:
        """Take a backup now (online) and return its record."""
        name, chosen, compression = check_backup_request(name, namespaces, compression, backup_type)
        sealing = is_sealing(self.codec)
        if encrypt is True and not sealing:
            raise InvalidInput(
                "'encrypt' is true but encryption at rest is off: there is no key to seal the "
                "backup with (set DAKERA_ENCRYPTION_KEY)"
            )
        if encrypt is False and sealing:
            raise InvalidInput(
                "'encrypt' is false but encryption at rest is on: backups of an encrypted "
                "store are always sealed with its key"
            )
        with self.lock:
            return self._create(name, chosen, compression, trigger)

    def _create(
        self, name: str, namespaces: list[str] | None, compression: str, trigger: str
    ) -> BackupRecord:
        started = time.perf_counter()
        self.before_snapshot()
        created_at = int(self.clock())
        backup_id = f"bk_{created_at}_{secrets.token_hex(4)}"
        final = self.directory / f"{backup_id}{BACKUP_SUFFIX}"
        partial = final.with_name(final.name + PARTIAL_SUFFIX)
        wanted = None if namespaces is None else frozenset(namespaces)
        attachments: list[StoredRow] = []
        try:
            # Blob deletes are held from before the instant: a record in the snapshot keeps
            # its file until the backup has read it.
            with (
                self.blobs.hold_deletes(),
                self.store.snapshot() as view,
                partial.open("wb") as out,
            ):
                codec = self.codec
                sealed = is_sealing(codec)
                header = BackupHeader(
                    backup_id=backup_id,
                    created_at=created_at,
                    server_version=self.server_version,
                    sealed=sealed,
                    compression=compression,
                    key_check=seal_key_check(codec, backup_id) if sealed else None,
                )
                writer = BackupWriter(out, header, codec, name=name, namespaces=namespaces)
                pace = Pacer()
                synced = 0
                for table in BACKED_UP_TABLES:
                    for row in view.iter_rows(table):
                        pace()
                        if writer.size - synced >= SYNC_EVERY_BYTES:
                            out.flush()
                            os.fdatasync(out.fileno())
                            synced = writer.size
                        placement = place(row)
                        if placement is not None and selected(placement, wanted):
                            writer.add(placement.section, row)
                            if table == "attachments":
                                attachments.append(row)
                write_files(writer, view, self.blobs, attachments)
                sha256 = writer.finish()
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, final)
            fsync_directory(self.directory)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        record = BackupRecord(
            backup_id=backup_id,
            name=name,
            created_at=created_at,
            completed_at=int(self.clock()),
            size_bytes=writer.size,
            sha256=sha256,
            counts=writer.counts,
            sealed=sealed,
            compression=compression,
            server_version=self.server_version,
            namespaces=namespaces,
            trigger=trigger,
            duration_ms=(time.perf_counter() - started) * 1000.0,
        )
        self._write_manifest(record)
        self.events.emit(
            "backup_created",
            reason=trigger,
            details={"backup_id": backup_id, "size_bytes": writer.size, "counts": writer.counts},
        )
        logger.info(
            "backup %s written: %d bytes in %.2f s",
            backup_id,
            writer.size,
            record.duration_ms / 1e3,
        )
        return record

    def delete(self, backup_id: str) -> None:
        """Remove a backup (its manifest first: it is unlisted before its data goes)."""
        self.get(backup_id)
        with self.lock:
            (self.directory / f"{backup_id}{MANIFEST_SUFFIX}").unlink(missing_ok=True)
            (self.directory / f"{backup_id}{BACKUP_SUFFIX}").unlink(missing_ok=True)
            fsync_directory(self.directory)
        self.events.emit("backup_deleted", details={"backup_id": backup_id})

    # ------------------------------------------------------------------ exchange
    def verify(self, backup_id: str) -> VerifiedBackup:
        """Check a listed backup's format, checksum and key (``BackupRejected`` if bad)."""
        with self.path_of(backup_id).open("rb") as handle:
            return BackupReader(handle, self.codec).verify()

    def download(self, backup_id: str) -> Iterator[bytes]:
        """The backup file gzip-compressed, in chunks (the wire form of the download route)."""
        path = self.path_of(backup_id)

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as handle:
                header = BackupReader(handle, self.codec).header()
                handle.seek(0)
                # Sealed or already compressed frames do not shrink: store them (level 0,
                # still a valid gzip member) instead of spending seconds of CPU for nothing.
                level = 0 if header.sealed or header.compression == "gzip" else 1
                packer = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: gzip
                while block := handle.read(DOWNLOAD_CHUNK):
                    if out := packer.compress(block):
                        yield out
            yield packer.flush()

        return chunks()

    def receive(self, write_body: Callable[[IO[bytes]], None]) -> BackupRecord:
        """Store an uploaded backup: ``write_body`` writes the received bytes (gzip or plain)
        into a temporary file; it is fully verified before it is listed."""
        partial = self.directory / f"upload-{secrets.token_hex(8)}{PARTIAL_SUFFIX}"
        try:
            with partial.open("w+b") as raw:
                write_body(raw)
                raw.seek(0)
                plain = _ungzip_if_needed(raw, partial)
                try:
                    plain.seek(0)
                    verified = BackupReader(plain, self.codec).verify()
                    plain.seek(0)
                    backup_id = verified.header.backup_id
                    final = self.directory / f"{backup_id}{BACKUP_SUFFIX}"
                    with self.lock:
                        if final.exists():
                            raise Conflict(f"backup '{backup_id}' already exists here")
                        staged = final.with_name(final.name + PARTIAL_SUFFIX)
                        with staged.open("wb") as out:
                            while block := plain.read(DOWNLOAD_CHUNK):
                                out.write(block)
                            out.flush()
                            os.fsync(out.fileno())
                        os.replace(staged, final)
                        fsync_directory(self.directory)
                finally:
                    if plain is not raw:
                        plain.close()
        finally:
            partial.unlink(missing_ok=True)
            partial.with_name(partial.name + ".plain").unlink(missing_ok=True)
        header = verified.header
        record = BackupRecord(
            backup_id=header.backup_id,
            name=verified.name,
            created_at=header.created_at,
            completed_at=int(self.clock()),
            size_bytes=verified.size,
            sha256=verified.sha256,
            counts=verified.counts,
            sealed=header.sealed,
            compression=header.compression,
            server_version=header.server_version,
            namespaces=verified.namespaces,
            trigger="upload",
            format_version=header.format_version,
        )
        self._write_manifest(record)
        self.events.emit("backup_uploaded", details={"backup_id": header.backup_id})
        return record


def _ungzip_if_needed(raw: IO[bytes], partial: Path) -> IO[bytes]:
    """The plain backup bytes: ``raw`` itself, or its gunzipped copy beside it."""
    magic = raw.read(2)
    raw.seek(0)
    if magic != b"\x1f\x8b":
        return raw
    plain = partial.with_name(partial.name + ".plain").open("w+b")
    try:
        with gzip.GzipFile(fileobj=raw, mode="rb") as unpacked:
            while block := unpacked.read(DOWNLOAD_CHUNK):
                plain.write(block)
    except (OSError, EOFError, zlib.error):
        plain.close()
        raise BackupRejected(
            "the uploaded gzip stream is damaged or cut short; nothing was stored"
        ) from None
    return plain
