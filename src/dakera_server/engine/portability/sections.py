"""What a backup holds and what a restore replaces: every store row mapped to a section and,
where it belongs to one, a namespace.

Sections: ``memories`` (with their vectors), ``sessions``, ``edges`` (the knowledge graph),
``trash`` (restorable removed memories), ``documents`` (records of imported documents, whose
chunks are memories), ``namespaces`` and ``vectors`` (vector namespaces), ``representations``
(the extra representations of multi-representation records, beside their vectors),
``policies`` (namespace memory policies), ``entity_configs``, ``api_keys`` (key records, which
hold secret hashes only), ``key_settings`` (the pepper their lookup handles are computed
with, and the keys' version token) and ``attachments`` (records of uploaded files, placed in
the namespace that holds them, the row's group).

An attachment's bytes live outside the store's rows (``DATA_DIR/attachments`` or the
database's blob tables): a backup carries each selected record's file after the rows, and a
restore writes the files as new blobs before its store transaction (``files.py``), deleting
the blobs of replaced attachments only after it committed. A backup of format version 1 has no
attachments: restoring it leaves the server's attachments as they are (``ROW_TABLES_V1``).

Not backed up, on purpose: the root key's hash (it follows ``DAKERA_ROOT_API_KEY`` or the data
directory that generated it), the encryption record (a restore target has its own), lifecycle
job markers and counters (``lifecycle.*``, ``job.*``), and the business-event log (history of
this server, kept beside the store).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from dakera_server.engine.access import agent_namespace
from dakera_server.storage.base import StoredRow, Table

__all__ = [
    "AGENT_TABLES",
    "BACKED_UP_TABLES",
    "GLOBAL_SECTIONS",
    "ROW_TABLES_V1",
    "SECTIONS",
    "Placement",
    "place",
]

AGENT_TABLES: dict[Table, str] = {
    "memories": "memories",
    "sessions": "sessions",
    "edges": "edges",
    "trash": "trash",
    "documents": "documents",
}
META_SECTIONS = {"memory_policy:": "policies", "entity-config:": "entity_configs"}
KEY_META = ("api_key_pepper", "api_keys_version")
SECTIONS = (
    "memories", "sessions", "edges", "trash", "documents", "namespaces", "vectors",
    "representations", "policies", "entity_configs", "api_keys", "key_settings", "attachments",
)  # fmt: skip
GLOBAL_SECTIONS = frozenset({"api_keys", "key_settings"})
# The store tables a backup reads, in the order it writes them (``place`` picks the rows);
# a restore empties the same tables' selected rows before writing the backup's. Attachments
# come last: their files follow every row in the file.
BACKED_UP_TABLES: tuple[Table, ...] = (
    "meta", "api_keys", "namespaces", "vectors", "representations", "memories", "sessions",
    "edges", "trash", "documents", "attachments",
)  # fmt: skip
# What a backup of format version 1 held (and so what restoring one replaces).
ROW_TABLES_V1: tuple[Table, ...] = tuple(t for t in BACKED_UP_TABLES if t != "attachments")


@dataclass(frozen=True)
class Placement:
    """Where a row belongs: its section, and its namespace (``None``: server-wide)."""

    section: str
    namespace: str | None


def place(row: StoredRow) -> Placement | None:
    """The section and namespace of ``row``; ``None`` for rows a backup leaves out."""
    table = row.table
    if table in AGENT_TABLES:
        return Placement(AGENT_TABLES[table], agent_namespace(row.group))
    if table == "namespaces":
        return Placement("namespaces", row.key)
    if table == "vectors":
        return Placement("vectors", row.group)
    if table == "representations":
        return Placement("representations", row.group)
    if table == "attachments":
        return Placement("attachments", row.group)
    if table == "api_keys":
        return Placement("api_keys", None)
    if table == "meta":
        for prefix, section in META_SECTIONS.items():
            if row.key.startswith(prefix):
                return Placement(section, row.key[len(prefix) :])
        if row.key in KEY_META:
            return Placement("key_settings", None)
    return None


def selected(placement: Placement, namespaces: Collection[str] | None) -> bool:
    """Whether a row so placed belongs to a backup or restore of ``namespaces`` (None: all).

    A subset never includes server-wide sections (API keys): they belong to no namespace.
    """
    if namespaces is None:
        return True
    return placement.namespace is not None and placement.namespace in namespaces
