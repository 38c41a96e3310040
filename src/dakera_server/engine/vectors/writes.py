"""Record writes of the vector routes: upserts (raw, columns, text), documents, deletes, updates.

Each function validates (and embeds) first, then hands ``NamespaceEngine.write`` a ``build``
step that, under the namespace lock, checks the batch against the namespace (dimension) and
returns the store operations plus the in-memory changes to apply once they are durable.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dakera_server.engine.access import Caller
from dakera_server.engine.rules import check_metadata, check_ttl
from dakera_server.engine.vectors.engine import NamespaceEngine
from dakera_server.engine.vectors.filters import compile_filter
from dakera_server.engine.vectors.input import (
    NewDocument,
    NewVector,
    ValidVectors,
    check_ids,
    check_text,
    check_vector_id,
    padded,
    validate_vectors,
)
from dakera_server.engine.vectors.namespace import VectorNamespace, VectorRecord, WritePlan
from dakera_server.errors import DimensionMismatch, InvalidInput
from dakera_server.storage.base import Op

__all__ = [
    "TextUpsertOutcome",
    "check_model",
    "delete_all",
    "delete_ids",
    "delete_where",
    "fulltext_delete",
    "index_documents",
    "update_where",
    "upsert",
    "upsert_columns",
    "upsert_text",
]


@dataclass(frozen=True)
class TextUpsertOutcome:
    """What ``upsert-text`` did, for its answer."""

    upserted_count: int
    tokens_processed: int
    model: str
    embedding_ms: float


def check_model(engine: NamespaceEngine, model: Any) -> str:
    """The model a text route asked for must be the one the server runs (or an alias)."""
    name = engine.embedder.model_name
    if model is None:
        return name
    aliases = {name.lower(), name.lower().split("/")[-1]}
    if name == "all-MiniLM-L6-v2":
        aliases |= {"minilm", "minilm-l6", "sentence-transformers/all-minilm-l6-v2"}
    if not isinstance(model, str) or model.strip().lower() not in aliases:
        raise InvalidInput(
            f"model {model!r} is not available: this server embeds text with {name} "
            f"({engine.embedder.dimension} dimensions); omit 'model' or pass '{name}'"
        )
    return name


def _check_dimension(namespace: VectorNamespace, width: int, what: str) -> None:
    dimension = namespace.info.dimension
    if dimension is not None and dimension != width:
        raise DimensionMismatch(
            f"{what} has dimension {width} but namespace '{namespace.name}' has dimension "
            f"{dimension}"
        )


def _vector_plan(
    engine: NamespaceEngine,
    namespace: VectorNamespace,
    batch: ValidVectors,
    revision: int,
    texts: Sequence[str | None] | None = None,
) -> WritePlan:
    """Replace the vector part (vector + metadata) of each id; keep or set its text."""
    records = []
    for i, record_id in enumerate(batch.ids):
        old = namespace.records.get(record_id)
        text = texts[i] if texts is not None else (old.text if old is not None else None)
        records.append(
            VectorRecord(
                id=record_id,
                metadata=batch.metadata[i],
                has_vector=True,
                text=text,
                expires_at=batch.expires_at[i],
                rev=revision,
            )
        )
    matrix = np.ascontiguousarray(batch.matrix, dtype=np.float32)
    blobs: list[Any] = [row.tobytes() for row in matrix]
    ops = engine.put_ops(namespace, records, blobs)

    def apply() -> None:
        for record in records:
            namespace.put(record)
        assert namespace.index is not None
        namespace.index.upsert(batch.ids, matrix)
        if texts is not None:
            namespace.text.upsert([(r.id, r.text) for r in records if r.text is not None])

    return WritePlan(ops, apply, len(records), dimension=batch.dimension, result=len(records))


def upsert(
    engine: NamespaceEngine,
    caller: Caller,
    name: str,
    items: Sequence[NewVector],
    extra_ops: Sequence[Op] = (),
    where: str = "vectors",
) -> int:
    """Insert or replace vectors by id; the first upsert creates the namespace.

    ``extra_ops`` commit in the same transaction (a record's representations, say).
    """
    batch = validate_vectors(items, int(engine.clock()), where=where)

    def build(namespace: VectorNamespace, revision: int, now: int) -> WritePlan:
        _check_dimension(namespace, batch.dimension, f"'{where}[0].values'")
        plan = _vector_plan(engine, namespace, batch, revision)
        plan.ops.extend(extra_ops)
        return plan

    plan = engine.write(caller, name, build, create=(batch.dimension, "cosine"))
    return int(plan.result)


def upsert_columns(
    engine: NamespaceEngine,
    caller: Caller,
    name: str,
    ids: Any,
    vectors: Any,
    attributes: Any = None,
    ttl_seconds: Any = None,
    dimension: Any = None,
) -> int:
    """Column-oriented upsert: ``ids[i]`` gets ``vectors[i]`` and ``attributes[col][i]``."""
    if not isinstance(ids, list) or not isinstance(vectors, list):
        raise InvalidInput("'ids' and 'vectors' must be lists")
    if len(ids) != len(vectors):
        raise InvalidInput(f"'ids' has {len(ids)} entries but 'vectors' has {len(vectors)}")
    columns = attributes or {}
    if not isinstance(columns, dict):
        raise InvalidInput("'attributes' must be an object of columns")
    for column, values in columns.items():
        if not isinstance(values, list) or len(values) != len(ids):
            raise InvalidInput(f"'attributes.{column}' must be a list of {len(ids)} values")
    items = [
        NewVector(
            id=record_id,
            values=vectors[i],
            metadata={c: v[i] for c, v in columns.items() if v[i] is not None},
            ttl_seconds=ttl_seconds,
        )
        for i, record_id in enumerate(ids)
    ]
    batch = validate_vectors(items, int(engine.clock()), where="vectors")
    if dimension is not None and dimension != batch.dimension:
        raise DimensionMismatch(
            f"'dimension' is {dimension} but the vectors have dimension {batch.dimension}"
        )

    def build(namespace: VectorNamespace, revision: int, now: int) -> WritePlan:
        _check_dimension(namespace, batch.dimension, "'vectors[0]'")
        return _vector_plan(engine, namespace, batch, revision)

    plan = engine.write(caller, name, build, create=(batch.dimension, "cosine"))
    return int(plan.result)


def _documents(items: Sequence[NewDocument], now: int) -> list[tuple[str, str, Any, Any]]:
    if not items:
        raise InvalidInput("'documents' must not be empty")
    out = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        record_id = check_vector_id(item.id, f"documents[{i}].id")
        if record_id in seen:
            raise InvalidInput(f"id '{record_id}' appears twice in 'documents'")
        seen.add(record_id)
        text = check_text(item.text, f"documents[{i}].text")
        metadata = check_metadata(item.metadata, f"documents[{i}].metadata")
        ttl = check_ttl(item.ttl_seconds, f"documents[{i}].ttl_seconds")
        out.append((record_id, text, metadata, None if ttl is None else now + ttl))
    return out


def upsert_text(
    engine: NamespaceEngine,
    caller: Caller,
    name: str,
    items: Sequence[NewDocument],
    model: Any = None,
) -> TextUpsertOutcome:
    """Embed texts with the server's model and upsert them as vectors, BM25-indexed too.

    Into a namespace wider than the model the vectors are zero-padded (cosine and dot products
    are unchanged); a narrower namespace is a 400.
    """
    model_name = check_model(engine, model)
    now = int(engine.clock())
    docs = _documents(items, now)
    if not caller.can_see(name):  # no embedding work for a namespace that will 404
        engine.get(caller, name)
    started = time.perf_counter()
    embedded = engine.embedder.embed([text for _, text, _, _ in docs])
    embedding_ms = (time.perf_counter() - started) * 1000.0
    width = engine.embedder.dimension

    def build(namespace: VectorNamespace, revision: int, now: int) -> WritePlan:
        dimension = namespace.info.dimension or width
        if dimension < width:
            raise DimensionMismatch(
                f"namespace '{namespace.name}' has dimension {dimension}, smaller than the "
                f"{width} dimensions of the embedding model {model_name}; use a namespace of "
                f"dimension {width} or more"
            )
        batch = ValidVectors(
            ids=[d[0] for d in docs],
            matrix=padded(embedded.vectors, dimension),
            metadata=[d[2] or {} for d in docs],
            expires_at=[d[3] for d in docs],
        )
        return _vector_plan(engine, namespace, batch, revision, texts=[d[1] for d in docs])

    plan = engine.write(caller, name, build, create=(width, "cosine"))
    return TextUpsertOutcome(
        upserted_count=int(plan.result),
        tokens_processed=sum(embedded.content_tokens),
        model=model_name,
        embedding_ms=embedding_ms,
    )


def index_documents(
    engine: NamespaceEngine, caller: Caller, name: str, items: Sequence[NewDocument]
) -> int:
    """Set the BM25 text (and metadata, when given) of each id; vectors are kept."""
    docs = _documents(items, int(engine.clock()))

    def build(namespace: VectorNamespace, revision: int, now: int) -> WritePlan:
        records, blobs = [], []
        for record_id, text, metadata, expires_at in docs:
            old = namespace.records.get(record_id)
            has_vector = old is not None and old.has_vector
            records.append(
                VectorRecord(
                    id=record_id,
                    metadata=metadata if metadata is not None else (old.metadata if old else {}),
                    has_vector=has_vector,
                    text=text,
                    expires_at=expires_at
                    if expires_at is not None or old is None
                    else old.expires_at,
                    rev=revision,
                )
            )
            blobs.append(engine.stored_vector(namespace, record_id) if has_vector else None)

        def apply() -> None:
            for record in records:
                namespace.put(record)
            namespace.text.upsert([(r.id, r.text or "") for r in records])

        return WritePlan(
            engine.put_ops(namespace, records, blobs), apply, len(records), result=len(records)
        )

    plan = engine.write(caller, name, build, create=(None, "cosine"))
    return int(plan.result)


def _delete_plan(namespace: VectorNamespace, ids: list[str]) -> WritePlan:
    targets = [namespace.records[i] for i in ids if i in namespace.records]
    ops = [Op.delete("vectors", r.id, group=namespace.name) for r in targets]
    # A record's extra representations (engine/records) go with it.
    ops += [Op.delete("representations", r.id, group=namespace.name) for r in targets]

    def apply() -> None:
        if namespace.index is not None:
            namespace.index.delete([r.id for r in targets if r.has_vector])
        namespace.text.delete([r.id for r in targets if r.text is not None])
        for record in targets:
            namespace.pop(record.id)

    return WritePlan(ops, apply, len(targets), op="deleted", result=len(targets))


def delete_ids(engine: NamespaceEngine, caller: Caller, name: str, ids: Any) -> int:
    """Delete records by id (vector and text); unknown ids are skipped. Returns how many."""
    wanted = check_ids(ids)
    plan = engine.write(caller, name, lambda ns, rev, now: _delete_plan(ns, wanted))
    return int(plan.result)


def delete_where(engine: NamespaceEngine, caller: Caller, name: str, filter: Any) -> int:
    """Delete every live record whose metadata passes ``filter`` (which is required)."""
    if not filter:
        raise InvalidInput(
            "'filter' is required and must not be empty (to empty a namespace, "
            'send {"delete_all": true} to vectors/delete)'
        )
    predicate = compile_filter(filter)

    def build(namespace: VectorNamespace, revision: int, now: int) -> WritePlan:
        return _delete_plan(namespace, [r.id for r in namespace.matching(predicate, now)])

    return int(engine.write(caller, name, build).result)


def delete_all(engine: NamespaceEngine, caller: Caller, name: str) -> int:
    """Delete every record of the namespace (the namespace itself stays)."""

    def build(namespace: VectorNamespace, revision: int, now: int) -> WritePlan:
        count = len(namespace.records)

        def apply() -> None:
            info = namespace.info
            namespace.records.clear()
            namespace.expiring = 0
            namespace.text.clear()
            if info.dimension is not None:
                namespace.index = namespace.new_index(info.dimension, info.distance)

        ops = [
            Op.delete_group("vectors", namespace.name),
            Op.delete_group("representations", namespace.name),
        ]
        return WritePlan(ops, apply, count, op="deleted", result=count)

    return int(engine.write(caller, name, build).result)


def update_where(
    engine: NamespaceEngine, caller: Caller, name: str, filter: Any, update: Any
) -> int:
    """Merge ``update`` into the metadata of every live record passing ``filter``; a ``null``
    value removes the field. Returns how many records changed."""
    if not filter:
        raise InvalidInput("'filter' is required and must not be empty")
    if not isinstance(update, dict) or not update:
        raise InvalidInput("'update' must be a non-empty object of metadata fields")
    check_metadata({k: v for k, v in update.items() if v is not None}, "update")
    predicate = compile_filter(filter)

    def build(namespace: VectorNamespace, revision: int, now: int) -> WritePlan:
        records, blobs = [], []
        for old in namespace.matching(predicate, now):
            metadata = {**old.metadata, **update}
            for key in [k for k, v in update.items() if v is None]:
                metadata.pop(key, None)
            check_metadata(metadata, f"metadata of '{old.id}'")
            records.append(
                VectorRecord(old.id, metadata, old.has_vector, old.text, old.expires_at, revision)
            )
            blobs.append(engine.stored_vector(namespace, old.id) if old.has_vector else None)

        def apply() -> None:
            for record in records:
                namespace.put(record)

        return WritePlan(
            engine.put_ops(namespace, records, blobs), apply, len(records), result=len(records)
        )

    return int(engine.write(caller, name, build).result)


def fulltext_delete(engine: NamespaceEngine, caller: Caller, name: str, ids: Any) -> int:
    """Remove the BM25 text of these ids (their vectors stay); returns how many had text."""
    wanted = check_ids(ids)

    def build(namespace: VectorNamespace, revision: int, now: int) -> WritePlan:
        targets = [namespace.records[i] for i in wanted if i in namespace.records]
        targets = [r for r in targets if r.text is not None]
        kept = [
            VectorRecord(r.id, r.metadata, True, None, r.expires_at, revision)
            for r in targets
            if r.has_vector
        ]
        ops = engine.put_ops(namespace, kept, [engine.stored_vector(namespace, r.id) for r in kept])
        ops += [
            Op.delete("vectors", r.id, group=namespace.name) for r in targets if not r.has_vector
        ]

        def apply() -> None:
            namespace.text.delete([r.id for r in targets])
            for record in targets:
                namespace.pop(record.id)
            for record in kept:
                namespace.put(record)

        return WritePlan(ops, apply, len(targets), op="deleted", result=len(targets))

    return int(engine.write(caller, name, build).result)
