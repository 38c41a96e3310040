"""What a backup is as listed (``BackupRecord``, its manifest) and what a backup request may ask
(``check_backup_request``: the same checks for a manual and a scheduled backup)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dakera_server.engine.portability.container import FORMAT_VERSION
from dakera_server.errors import InvalidInput

__all__ = ["BACKUP_TYPES", "COMPRESSIONS", "BackupRecord", "check_backup_request"]

COMPRESSIONS = ("gzip", "none")
BACKUP_TYPES = ("full",)
MAX_NAME_CHARS = 128


@dataclass
class BackupRecord:
    """A completed backup as listed (its manifest)."""

    backup_id: str
    name: str
    created_at: int
    completed_at: int
    size_bytes: int
    sha256: str
    counts: dict[str, int]
    sealed: bool
    compression: str
    server_version: str
    namespaces: list[str] | None = None
    trigger: str = "manual"
    duration_ms: float = 0.0
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """The backup object of the admin routes."""
        return {
            "backup_id": self.backup_id,
            "id": self.backup_id,
            "name": self.name,
            "status": "completed",
            "backup_type": "full",
            "trigger": self.trigger,
            "created_at": self.created_at,
            "completed_at": self.completed_at,
            "size_bytes": self.size_bytes,
            "checksum": f"sha256:{self.sha256}",
            "sha256": self.sha256,
            "counts": self.counts,
            "memory_count": self.counts.get("memories", 0),
            "vector_count": self.counts.get("vectors", 0),
            "namespaces": self.namespaces,
            "encrypted": self.sealed,
            "compression": self.compression,
            "format_version": self.format_version,
            "server_version": self.server_version,
            "duration_ms": round(self.duration_ms, 1),
        }


def check_backup_request(
    name: Any, namespaces: Any, compression: Any, backup_type: Any
) -> tuple[str, list[str] | None, str]:
    """Validated (name, namespaces, compression) of a backup request."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("'name' is required: a non-empty string")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"'name' is longer than {MAX_NAME_CHARS} characters")
    kind = "full" if backup_type is None else backup_type
    if kind not in BACKUP_TYPES:
        raise InvalidInput(
            f"backup_type '{kind}' is not supported: this server takes full backups only "
            "(each one is a consistent point-in-time copy); omit backup_type or send 'full'"
        )
    chosen: list[str] | None = None
    if namespaces is not None:
        if not isinstance(namespaces, list) or not all(isinstance(n, str) for n in namespaces):
            raise InvalidInput("'namespaces' must be a list of namespace names")
        if not namespaces:
            raise InvalidInput("'namespaces' is empty: omit it to back up everything")
        chosen = sorted(set(namespaces))
    packing = "gzip" if compression is None else compression
    if packing not in COMPRESSIONS:
        raise InvalidInput(
            f"compression '{packing}' is not supported: use 'gzip' (the default) or 'none'"
        )
    return name.strip(), chosen, packing
