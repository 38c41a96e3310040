"""One upload in progress: hashed, size-checked and sealed as its bytes stream in.

Nothing of an upload is visible until ``finish``: the bytes go to an uncommitted blob, and the
record that makes the attachment exist is written only after the size limit, the declared
media type, an optional client digest and the duplicate check all passed. A refused upload
aborts its blob, so it leaves no trace in the data directory.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from dakera_server.engine.attachments.models import Attachment
from dakera_server.engine.attachments.sealing import StreamSealer, new_data_key
from dakera_server.engine.attachments.sniff import HEAD_BYTES, check_declared
from dakera_server.errors import InvalidInput, PayloadTooLarge
from dakera_server.storage.blobs import BlobWriter

__all__ = ["Upload", "UploadSpec"]


@dataclass(frozen=True)
class UploadSpec:
    """What the client declared about an upload."""

    namespace: str
    content_type: str
    filename: str | None
    expected_sha256: str | None  # from a Content-Digest header, to detect tampering in transit


class Upload:
    """Feed it the body with ``write``; ``finish`` hands the record to ``commit``."""

    def __init__(
        self,
        spec: UploadSpec,
        writer: BlobWriter,
        *,
        max_bytes: int,
        encrypt: bool,
        now: int,
        commit: Callable[[Attachment], tuple[Attachment, bool]],
    ) -> None:
        self.spec = spec
        self.writer = writer
        self.max_bytes = max_bytes
        self.now = now
        self._commit = commit
        self._hash = hashlib.sha256()
        self._head = bytearray()
        self.size = 0
        self.key = new_data_key() if encrypt else None
        identity = f"{spec.namespace}/{writer.name}"
        self._sealer = None if self.key is None else StreamSealer(self.key, identity)
        self._open = True

    def write(self, data: bytes) -> None:
        """Append body bytes (413 ``PAYLOAD_TOO_LARGE`` once past the limit)."""
        if not data:
            return
        self.size += len(data)
        if self.size > self.max_bytes:
            self.abort()
            raise PayloadTooLarge(
                f"the attachment is larger than {self.max_bytes} bytes "
                "(DAKERA_MAX_ATTACHMENT_BYTES)"
            )
        self._hash.update(data)
        if len(self._head) < HEAD_BYTES:
            self._head += data[: HEAD_BYTES - len(self._head)]
        self.writer.write(data if self._sealer is None else self._sealer.feed(data))

    def finish(self) -> tuple[Attachment, bool]:
        """Check what arrived, then make it durable; (attachment, created)."""
        try:
            check_declared(self.spec.content_type, bytes(self._head))
            digest = self._hash.hexdigest()
            expected = self.spec.expected_sha256
            if expected is not None and not hmac.compare_digest(expected, digest):
                raise InvalidInput(
                    "the body does not match its Content-Digest: it was changed in transit"
                )
            if self._sealer is not None:
                self.writer.write(self._sealer.finish())
        except BaseException:
            self.abort()
            raise
        attachment = Attachment(
            namespace=self.spec.namespace,
            ref=f"sha256:{digest}",
            content_type=self.spec.content_type,
            size=self.size,
            created_at=self.now,
            blob=self.writer.name,
            key=self.key,
            filename=self.spec.filename,
        )
        self._open = False
        return self._commit(attachment)

    def abort(self) -> None:
        """Drop the upload (idempotent)."""
        if self._open:
            self._open = False
            self.writer.abort()

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, *exc: object) -> None:
        # Whatever ended the upload early (a refusal, the body limit, a dropped client), the
        # bytes written so far go.
        self.abort()
