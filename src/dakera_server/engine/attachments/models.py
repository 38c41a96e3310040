"""An attachment's record: what the store keeps about a file (its bytes are a blob).

The record is persisted like every other (one payload through the store's codec), so with
encryption at rest its media type, file name and data key are sealed under the master key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from dakera_server.engine.access import AGENT_NAMESPACE_PREFIX
from dakera_server.engine.rules import check_agent_id, check_namespace_name
from dakera_server.errors import InvalidInput, MemoryNotFound

__all__ = ["REF", "Attachment", "check_filename", "check_ref", "check_space", "not_found"]

REF = re.compile(r"^sha256:[0-9a-f]{64}$")
FILENAME_MAX_BYTES = 255
FILENAME_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f/\\\"]")


@dataclass(frozen=True)
class Attachment:
    """One stored file of a namespace."""

    namespace: str
    ref: str
    content_type: str
    size: int
    created_at: int
    blob: str
    key: bytes | None = None  # the data key sealing the blob; None: stored as is
    filename: str | None = None

    @property
    def sha256(self) -> str:
        """The hex digest of the bytes (the ``ETag``)."""
        return self.ref.split(":", 1)[1]

    @property
    def identity(self) -> str:
        """What the sealed stream is bound to (associated data of every record)."""
        return f"{self.namespace}/{self.blob}"

    def to_wire(self) -> dict[str, Any]:
        """The listing entry of dakera-api.md §5.1 (plus creation time and file name)."""
        wire: dict[str, Any] = {
            "attachment_ref": self.ref,
            "content_type": self.content_type,
            "size_bytes": self.size,
            "created_at": self.created_at,
        }
        if self.filename is not None:
            wire["filename"] = self.filename
        return wire

    def to_payload(self) -> bytes:
        """Stored form (the store's codec seals it when encryption is on)."""
        return orjson.dumps(
            {
                "content_type": self.content_type,
                "size": self.size,
                "created_at": self.created_at,
                "blob": self.blob,
                "key": None if self.key is None else self.key.hex(),
                "filename": self.filename,
            }
        )

    @classmethod
    def from_payload(cls, namespace: str, ref: str, payload: bytes) -> Attachment:
        """Inverse of ``to_payload``."""
        data = orjson.loads(payload)
        key = data.get("key")
        return cls(
            namespace=namespace,
            ref=ref,
            content_type=str(data["content_type"]),
            size=int(data["size"]),
            created_at=int(data["created_at"]),
            blob=str(data["blob"]),
            key=None if key is None else bytes.fromhex(key),
            filename=data.get("filename"),
        )


def check_ref(value: Any) -> str:
    """An attachment reference: ``sha256:`` + 64 lower-case hex digits."""
    if not isinstance(value, str) or not REF.fullmatch(value):
        raise InvalidInput("'attachment_ref' must be 'sha256:' followed by 64 hex digits")
    return value


def check_space(namespace: str) -> str:
    """A namespace attachments may live in: a data namespace or an agent's own."""
    if namespace.startswith(AGENT_NAMESPACE_PREFIX):
        check_agent_id(namespace[len(AGENT_NAMESPACE_PREFIX) :], "namespace")
        return namespace
    return check_namespace_name(namespace, "namespace")


def check_filename(value: str | None) -> str | None:
    """An optional file name: one path segment, printable, at most 255 bytes."""
    if value is None or value == "":
        return None
    if len(value.encode("utf-8")) > FILENAME_MAX_BYTES:
        raise InvalidInput(f"'filename' is longer than {FILENAME_MAX_BYTES} bytes")
    if FILENAME_FORBIDDEN.search(value) or value in (".", ".."):
        raise InvalidInput("'filename' must be one file name without slashes, quotes or controls")
    return value


def not_found(ref: str) -> MemoryNotFound:
    """The contract's 404 for an attachment: ``VECTOR_NOT_FOUND`` with ``resource``."""
    return MemoryNotFound(f"attachment '{ref}' not found", resource="attachment")
