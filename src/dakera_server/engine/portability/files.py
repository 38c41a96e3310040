"""Attachment files in backups: carried as plaintext inside the backup's own frames, written
back as fresh blobs before a restore's records.

Why plaintext inside the frames, not the stored (sealed) bytes: a stored file is sealed with its
own data key and bound to ``<namespace>/<blob name>`` (``attachments/sealing.py``), and a
restore writes new blobs whose names the blob store chooses. Copying sealed bytes would work
only under the old blob names (a restore over the same server can find them still in use) and
would carry the data keys inside the records. So a backup unseals each file and puts its bytes
in 'B' frames, which the backup itself seals with the store's key when encryption at rest is
on (the same AES-256-GCM as every other frame; a backup sealed by another key is refused before
anything is read, so nothing is lost by not keeping the old sealing). A restore seals each file
again under a new data key when the target encrypts, and checks every file against its
``sha256:`` reference and its record's size: a backup can never restore a record whose bytes
are missing or differ.

Consistency of a backup: the records come from the store snapshot; the bytes from the same
snapshot where the store keeps blobs in its transactions (PostgreSQL), else from the blob
store, whose deletes the backup holds from before the snapshot to its end
(``BlobStore.hold_deletes``): a record in the snapshot deleted meanwhile still has its file.
A file missing or altered anyway (removed by hand from ``DATA_DIR/attachments``) fails the
backup with a message naming it; nothing is listed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from dakera_server.engine.attachments.models import Attachment
from dakera_server.engine.attachments.sealing import StreamSealer, new_data_key, unseal
from dakera_server.engine.portability.container import BackupWriter, BlobPiece
from dakera_server.errors import BackupCorrupt, NotFound, StorageError
from dakera_server.storage.base import StoredRow, StoreSnapshot
from dakera_server.storage.blobs import BlobStore, BlobWriter

__all__ = ["StagedFiles", "write_files"]


def write_files(
    writer: BackupWriter, view: StoreSnapshot, blobs: BlobStore, records: Iterable[StoredRow]
) -> None:
    """Append the file of every attachment record in ``records`` (already added as rows)."""
    for row in records:
        attachment = Attachment.from_payload(row.group, row.key, row.payload)
        try:
            stored = view.read_blob(attachment.blob)
            if stored is None:
                stored = blobs.read(attachment.blob)
        except NotFound:
            raise StorageError(
                f"the backup was not written: attachment {attachment.ref} of namespace "
                f"'{attachment.namespace}' has no stored bytes (its file is missing)"
            ) from None
        plain = stored if attachment.key is None else unseal(
            attachment.key, attachment.identity, stored
        )  # fmt: skip
        writer.add_blob(row.group, row.key, _checked(attachment, plain))


def _checked(attachment: Attachment, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``chunks``, refusing at the end a file that is not what its record says."""
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        yield chunk
    if size != attachment.size or digest.hexdigest() != attachment.sha256:
        raise StorageError(
            f"the backup was not written: the stored bytes of attachment {attachment.ref} of "
            f"namespace '{attachment.namespace}' do not match its record (damaged on disk)"
        )


@dataclass(frozen=True)
class Staged:
    """A file a restore wrote as a committed blob, not yet named by any record."""

    blob: str
    key: bytes | None
    size: int


@dataclass
class StagedFiles:
    """The files of one restore, written before its store transaction (see the module)."""

    blobs: BlobStore
    seal: bool
    files: dict[tuple[str, str], Staged] = field(default_factory=dict)
    bytes_written: int = 0

    def stage(self, pieces: Iterable[BlobPiece]) -> None:
        """Write every file of ``pieces`` (already filtered to the restore's targets) as a
        committed blob, sealed under a new data key when ``seal``; each checked against its
        reference. On any failure the blobs written so far are deleted."""
        writer: BlobWriter | None = None
        try:
            current: tuple[str, str] | None = None
            digest = hashlib.sha256()
            sealer: StreamSealer | None = None
            key: bytes | None = None
            size = 0
            for piece in pieces:
                ident = (piece.group, piece.key)
                if current != ident:
                    if current is not None or ident in self.files:
                        raise BackupCorrupt("the backup's attachment files are out of order")
                    current, writer = ident, self.blobs.create()
                    digest, size = hashlib.sha256(), 0
                    key = new_data_key() if self.seal else None
                    name = f"{piece.group}/{writer.name}"
                    sealer = None if key is None else StreamSealer(key, name)
                if writer is None:  # unreachable: a new file always opens a writer
                    raise BackupCorrupt("the backup's attachment files are out of order")
                digest.update(piece.data)
                size += len(piece.data)
                writer.write(piece.data if sealer is None else sealer.feed(piece.data))
                if piece.last:
                    if f"sha256:{digest.hexdigest()}" != piece.key:
                        raise BackupCorrupt(
                            "an attachment file in the backup does not match its reference"
                        )
                    if sealer is not None:
                        writer.write(sealer.finish())
                    self.files[ident] = Staged(writer.commit(), key, size)
                    self.bytes_written += size
                    current, writer = None, None
            if current is not None:
                raise BackupCorrupt("an attachment file in the backup is cut short")
        except BaseException:
            if writer is not None:
                writer.abort()
            self.discard()
            raise

    def rebind(self, row: StoredRow) -> StoredRow:
        """An attachment record of the backup pointing at its staged blob and data key."""
        staged = self.files.get((row.group, row.key))
        old = Attachment.from_payload(row.group, row.key, row.payload)
        if staged is None or staged.size != old.size:
            raise BackupCorrupt(
                f"attachment {row.key} is in the backup without its file, or with another size"
            )
        new = Attachment(
            old.namespace,
            old.ref,
            old.content_type,
            old.size,
            old.created_at,
            staged.blob,
            staged.key,
            old.filename,
        )
        return StoredRow(row.table, row.key, row.group, new.to_payload(), row.vector)

    def discard(self) -> None:
        """Delete every staged blob (the restore did not commit)."""
        for staged in self.files.values():
            self.blobs.delete(staged.blob)
        self.files.clear()
