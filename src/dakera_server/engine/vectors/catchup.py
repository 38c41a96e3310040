"""Another node's writes to a namespace, applied row by row to the one this node holds.

On a shared store (docs/scale-out.md) a node learns from the change log which vector rows of a
namespace another node committed. Reloading the whole namespace for that (every row read, the
index rebuilt) costs time in the namespace's size for a one-vector upsert: a 100k-vector
namespace rebuilt its HNSW graph on the next read after each foreign write. Here only the named
rows are read (one ``get_rows`` round trip) and put into, or removed from, the records map, the
vector index and the text index, as a local write's ``apply`` does.

Whatever this cannot apply exactly answers ``False`` and the caller reloads the namespace
whole: a whole-group delete (``delete_all``, a namespace deleted and created again), a table
of the group this module does not know, a namespace whose life (``uid``),
dimension, distance or index kind changed, a stored vector of the wrong size, or a batch that
names more than half the namespace (one pass over every row is then the cheaper read).
"""

from __future__ import annotations

from collections.abc import Sequence

from dakera_server.engine.vectors.load import stored_matrix
from dakera_server.engine.vectors.namespace import NamespaceInfo, VectorNamespace, VectorRecord
from dakera_server.storage.base import Change, Store

__all__ = ["apply_changed_rows"]

# "representations" rows (engine/records) are read from the store on each request, never held.
APPLIED_TABLES = frozenset({"vectors", "namespaces", "representations"})
WHOLE_RELOAD_ROWS = 1_000  # below this many changed rows, row by row always


def apply_changed_rows(store: Store, namespace: VectorNamespace, changes: Sequence[Change]) -> bool:
    """Bring ``namespace`` to the stored state of the rows ``changes`` name; ``False`` when the
    namespace must be reloaded whole instead (nothing is changed then). The caller holds
    ``namespace.lock``."""
    if namespace.deleted:
        return False
    if any(c.op == "delete_group" or c.table not in APPLIED_TABLES for c in changes):
        return False
    row = store.get_row("namespaces", namespace.name)
    if row is None:
        return False
    info = NamespaceInfo.from_payload(row.payload)
    held = namespace.info
    if info is None:  # unreadable: the whole reload decides what to do with it
        return False
    if (info.uid, info.distance, info.index_type) != (held.uid, held.distance, held.index_type):
        return False
    if held.dimension is not None and info.dimension != held.dimension:
        return False
    keys = list(dict.fromkeys(c.key for c in changes if c.table == "vectors"))
    if len(keys) > max(WHOLE_RELOAD_ROWS, len(namespace.records) // 2):
        return False  # most of it changed (a bulk load elsewhere): one pass over every row
    rows = store.get_rows("vectors", keys, namespace.name) if keys else {}
    blobs = {key: stored.vector for key, stored in rows.items() if stored.vector is not None}
    matrix = None
    if blobs:
        if info.dimension is None:
            return False
        ids, matrix = stored_matrix(list(blobs), blobs, info.dimension)
        if len(ids) != len(blobs):
            return False

    vectors_gone: list[str] = []
    texts_gone: list[str] = []
    texts: list[tuple[str, str]] = []
    for key in keys:
        stored = rows.get(key)
        record = (
            None
            if stored is None
            else VectorRecord.from_payload(key, stored.payload, stored.vector is not None)
        )
        before = namespace.put(record) if record is not None else namespace.pop(key)
        if record is not None and record.text is not None:
            texts.append((key, record.text))
        if before is None:
            continue
        if before.has_vector and key not in blobs:
            vectors_gone.append(key)
        if before.text is not None and (record is None or record.text is None):
            texts_gone.append(key)
    if namespace.index is None and info.dimension is not None:
        namespace.index = namespace.new_index(info.dimension, info.distance)
    if namespace.index is not None:
        if vectors_gone:
            namespace.index.delete(vectors_gone)
        if matrix is not None:
            namespace.index.upsert(list(blobs), matrix)
    if texts_gone:
        namespace.text.delete(texts_gone)
    if texts:
        namespace.text.upsert(texts)
    namespace.info = info
    return True
