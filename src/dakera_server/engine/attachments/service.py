"""The attachment store: files of a namespace, their records, references and clean-up.

A file is a blob (``storage/blobs.py``) plus a record in the ``attachments`` table (namespace,
``sha256:`` ref, media type, size, blob name, data key). The record is written after the blob
is durable and before the upload is answered, so a 2xx means both exist; a crash between the
two leaves an orphan blob, removed at the next start. Reads stream the blob (unsealed record by
record when encrypted): memory does not grow with the file.

An attachment is *referenced* while a memory of the agent whose namespace holds it points at it
(``attachment_ref``) or an imported document came from it; deleting it then is a 409. When the
last referencing memory or document goes, the attachment goes with it (the SDK documents this
for ``delete_attachment`` and ``delete_document``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from dakera_server.engine.access import AGENT_NAMESPACE_PREFIX, Caller, Scope, agent_namespace
from dakera_server.engine.attachments.models import (
    Attachment,
    check_filename,
    check_ref,
    check_space,
    not_found,
)
from dakera_server.engine.attachments.sealing import StreamSealer, new_data_key, unseal
from dakera_server.engine.attachments.sniff import normalize_media_type
from dakera_server.engine.attachments.upload import Upload, UploadSpec
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.models import Memory
from dakera_server.errors import (
    Conflict,
    FeatureDisabled,
    InvalidInput,
    NamespaceNotFound,
    PayloadTooLarge,
    StorageError,
)
from dakera_server.storage.base import IdentityCodec, Op, Store
from dakera_server.storage.blobs import BlobStore

__all__ = ["AttachmentStore", "Referencer"]

logger = logging.getLogger("dakera_server.attachments")

# Reads memories of any agent to find references; never handed to a request.
SYSTEM_READER = Caller(key_id="system", name="system", scope=Scope.SUPER_ADMIN)
# Engine-made provenance of document chunks and transcripts (documents/, media/ set it).
PROVENANCE = frozenset({"_dakera_document", "_dakera_attachment"})
# (namespace, ref) -> a short description of something that references the attachment, or None.
Referencer = Callable[[str, str], str | None]


class AttachmentStore:
    """Every attachment of the server; see the module docstring."""

    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        memories: MemoryEngine,
        *,
        enabled: bool,
        max_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.memories = memories
        self.enabled = enabled
        self.max_bytes = max_bytes
        self.clock = clock
        self.referencers: list[Referencer] = [self._memory_reference]
        self._items: dict[tuple[str, str], Attachment] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ start-up
    def load(self) -> int:
        """Read the records (replacing what was held: also the reload after a restore); seal
        files stored before encryption was on; drop orphan blobs."""
        items: dict[tuple[str, str], Attachment] = {}
        for row in self.store.iter_rows("attachments"):
            items[(row.group, row.key)] = Attachment.from_payload(row.group, row.key, row.payload)
        with self._lock:
            self._items = items
        if self.encrypted:
            for attachment in [a for a in self._items.values() if a.key is None]:
                self._seal_in_place(attachment)
        known = {a.blob for a in self._items.values()}
        for name in self.blobs.names():
            if name not in known:
                self.blobs.delete(name)
        return len(self._items)

    @property
    def encrypted(self) -> bool:
        """Whether encryption at rest is on (the store seals its records)."""
        return not isinstance(getattr(self.store, "codec", IdentityCodec()), IdentityCodec)

    def _seal_in_place(self, plain: Attachment) -> None:
        """A file uploaded before encryption was switched on: write it sealed, then swap."""
        writer = self.blobs.create()
        key = new_data_key()
        sealer = StreamSealer(key, f"{plain.namespace}/{writer.name}")
        try:
            for chunk in self.blobs.read(plain.blob):
                writer.write(sealer.feed(chunk))
            writer.write(sealer.finish())
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        sealed = Attachment(
            plain.namespace,
            plain.ref,
            plain.content_type,
            plain.size,
            plain.created_at,
            writer.name,
            key,
            plain.filename,
        )
        self.store.write(
            [Op.put("attachments", plain.ref, sealed.to_payload(), group=plain.namespace)]
        )
        self._items[(plain.namespace, plain.ref)] = sealed
        self.blobs.delete(plain.blob)
        logger.info("sealed an attachment stored before encryption at rest was on")

    # ------------------------------------------------------------------ access
    def require_enabled(self) -> None:
        """501 ``FEATURE_DISABLED`` unless the lane is on."""
        if not self.enabled:
            raise FeatureDisabled(
                "attachments are not enabled on this server",
                details="set DAKERA_ATTACHMENTS to enable it",
            )

    def _space(self, caller: Caller, namespace: str) -> str:
        self.require_enabled()
        check_space(namespace)
        if not caller.can_see(namespace):
            raise NamespaceNotFound(f"namespace '{namespace}' not found", resource="namespace")
        return namespace

    # ------------------------------------------------------------------ writes
    def begin(
        self,
        caller: Caller,
        namespace: str,
        content_type: str | None,
        *,
        filename: str | None = None,
        expected_sha256: str | None = None,
        declared_length: int | None = None,
    ) -> Upload:
        """Start an upload into ``namespace`` (refused before any byte is read when it cannot
        succeed: lane off, namespace invisible, bad type or name, declared length too big)."""
        self._space(caller, namespace)
        spec = UploadSpec(
            namespace,
            normalize_media_type(content_type),
            check_filename(filename),
            expected_sha256,
        )
        if declared_length is not None and declared_length > self.max_bytes:
            raise PayloadTooLarge(
                f"the attachment is larger than {self.max_bytes} bytes "
                "(DAKERA_MAX_ATTACHMENT_BYTES)"
            )
        writer = self.blobs.create()

        def commit(attachment: Attachment) -> tuple[Attachment, bool]:
            key = (attachment.namespace, attachment.ref)
            with self._lock:
                existing = self._items.get(key)
                if existing is not None:
                    writer.abort()
                    return existing, False
                writer.commit()
                try:
                    self.store.write(
                        [
                            Op.put(
                                "attachments",
                                attachment.ref,
                                attachment.to_payload(),
                                group=attachment.namespace,
                            )
                        ]
                    )
                except BaseException:
                    self.blobs.delete(attachment.blob)
                    raise
                self._items[key] = attachment
            return attachment, True

        return Upload(
            spec,
            writer,
            max_bytes=self.max_bytes,
            encrypt=self.encrypted,
            now=int(self.clock()),
            commit=commit,
        )

    def delete(self, caller: Caller, namespace: str, ref: str) -> None:
        """Delete an attachment; 409 while something references it, 404 when absent."""
        self._space(caller, namespace)
        check_ref(ref)
        with self._lock:
            attachment = self._items.get((namespace, ref))
            if attachment is None:
                raise not_found(ref)
            for referencer in self.referencers:
                holder = referencer(namespace, ref)
                if holder is not None:
                    raise Conflict(
                        f"attachment '{ref}' is referenced by {holder}: delete that first"
                    )
            self._remove(attachment)

    def _remove(self, attachment: Attachment) -> None:
        self.store.write([Op.delete("attachments", attachment.ref, group=attachment.namespace)])
        self._items.pop((attachment.namespace, attachment.ref), None)
        self.blobs.delete(attachment.blob)

    def collect(self, namespace: str, ref: str) -> bool:
        """Delete the attachment if nothing references it any more; True if it went."""
        with self._lock:
            attachment = self._items.get((namespace, ref))
            if attachment is None:
                return False
            if any(r(namespace, ref) is not None for r in self.referencers):
                return False
            self._remove(attachment)
        return True

    # ------------------------------------------------------------------ reads
    def list(self, caller: Caller, namespace: str) -> list[Attachment]:
        """A namespace's attachments, sorted by reference."""
        self._space(caller, namespace)
        with self._lock:
            found = [a for (ns, _), a in self._items.items() if ns == namespace]
        return sorted(found, key=lambda a: a.ref)

    def get(self, caller: Caller, namespace: str, ref: str) -> Attachment:
        """One attachment's record (404 ``VECTOR_NOT_FOUND`` with ``resource`` when absent)."""
        self._space(caller, namespace)
        check_ref(ref)
        with self._lock:
            attachment = self._items.get((namespace, ref))
        if attachment is None:
            raise not_found(ref)
        return attachment

    def stream(self, attachment: Attachment) -> Iterator[bytes]:
        """The attachment's bytes, chunk by chunk (unsealed when stored sealed)."""
        chunks = self.blobs.read(attachment.blob)
        if attachment.key is None:
            return chunks
        return unseal(attachment.key, attachment.identity, chunks)

    def read_all(self, attachment: Attachment, limit: int) -> bytes:
        """The whole file in memory (document import, transcription), at most ``limit`` bytes."""
        if attachment.size > limit:
            raise PayloadTooLarge(f"the attachment is larger than {limit} bytes")
        data = bytearray()
        for chunk in self.stream(attachment):
            data += chunk
            if len(data) > limit:
                raise StorageError("a stored attachment is larger than its record says")
        return bytes(data)

    # ------------------------------------------------------------------ memory hooks
    def check_memory_refs(self, memories: Sequence[Memory]) -> None:
        """Before a store: each ``attachment_ref`` must name an attachment of the agent's
        namespace (dakera-api.md §3.7)."""
        for memory in memories:
            # Document chunks and transcripts point at the file they came from, wherever it is
            # stored; the engine part that made them checked it (their provenance says so).
            if memory.attachment_ref is None or PROVENANCE & set(memory.metadata or {}):
                continue
            check_ref(memory.attachment_ref)
            if not self.enabled:
                self.require_enabled()
            with self._lock:
                known = (agent_namespace(memory.agent_id), memory.attachment_ref) in self._items
            if not known:
                raise InvalidInput(
                    f"'attachment_ref' {memory.attachment_ref} is not an attachment of "
                    f"namespace '{agent_namespace(memory.agent_id)}': upload it there first"
                )

    def memories_forgotten(self, agent_id: str, removed: Sequence[Memory]) -> None:
        """After memories are deleted: an attachment of the agent no memory points at any more
        goes too."""
        refs = {m.attachment_ref for m in removed if m.attachment_ref is not None}
        for ref in sorted(refs):
            self.collect(agent_namespace(agent_id), ref)

    def _memory_reference(self, namespace: str, ref: str) -> str | None:
        if not namespace.startswith(AGENT_NAMESPACE_PREFIX):
            return None
        agent = self.memories.agent(SYSTEM_READER, namespace[len(AGENT_NAMESPACE_PREFIX) :])
        if agent is None:
            return None
        with agent.lock:
            for memory in agent.memories.values():
                if memory.attachment_ref == ref:
                    return f"memory '{memory.id}'"
        return None
