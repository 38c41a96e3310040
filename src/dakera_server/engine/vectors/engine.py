"""The namespace engine: isolated vector stores with their own ANN and BM25 indexes.

A data namespace (dakera-api.md §3.2-3.6) is created explicitly or by its first write, holds
records (``engine/vectors/namespace.py``) and answers searches (``engine/vectors/search.py``). This
module owns the namespaces' lifecycle and every write.

Writes, whatever route or transport they come from, go through ``_write``: validate and embed
outside any lock, then under the namespace's lock check against the namespace, commit the
records *and* the namespace row (with its revision bumped) in one durable ``store.write``, and
only then change the in-memory indexes. A batch is all or nothing.

Isolation: a namespace the caller may not see behaves exactly like a missing one (404
``NAMESPACE_NOT_FOUND``), for reads and writes alike, and a write by such a caller never
creates it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from dakera_server.engine.access import AGENT_NAMESPACE_PREFIX, Caller
from dakera_server.engine.ann import Metric
from dakera_server.engine.ann.snapshots import SnapshotStore
from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.memory.engine import Clock, MemoryEngine
from dakera_server.engine.rules import check_namespace_name
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.engine.vectors.input import check_dimension, check_distance, check_index_type
from dakera_server.engine.vectors.load import load_namespace
from dakera_server.engine.vectors.namespace import (
    NamespaceInfo,
    NamespaceView,
    VectorNamespace,
    VectorRecord,
    WritePlan,
)
from dakera_server.engine.vectors.snapshotting import (
    SNAPSHOT_INTERVAL_SECONDS,
    NamespaceSnapshotter,
)
from dakera_server.errors import (
    DimensionMismatch,
    InvalidInput,
    NamespaceNotFound,
    Unavailable,
    UnprocessableContent,
)
from dakera_server.storage.base import CurrentCodec, IdentityCodec, Op, Store

__all__ = ["NamespaceEngine", "NamespaceView"]

logger = logging.getLogger("dakera_server.vectors")


def not_found(name: str) -> NamespaceNotFound:
    """The one answer for a missing *or* invisible namespace."""
    return NamespaceNotFound(f"namespace '{name}' not found", resource="namespace")


def _nothing(_name: str) -> None:
    """Default ``follow``: a store of one process has nothing to catch up with."""


def _everything() -> None:
    """Default ``follow_all``."""


class NamespaceEngine:
    """Every data namespace of the server, their writes, and their persistence."""

    def __init__(
        self,
        store: Store,
        embedder: EmbeddingProvider,
        events: EventBus,
        memories: MemoryEngine,
        *,
        data_dir: Path,
        exact_threshold: int,
        clock: Clock = time.time,
        snapshot_interval: float = SNAPSHOT_INTERVAL_SECONDS,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.events = events
        self.memories = memories
        self.exact_threshold = exact_threshold
        self.clock = clock
        self.snapshots = SnapshotStore(Path(data_dir) / "snapshots", CurrentCodec(store))
        self.snapshotter = NamespaceSnapshotter(self.snapshots, self.held_all, snapshot_interval)
        self._namespaces: dict[str, VectorNamespace] = {}
        self._lock = threading.Lock()  # guards the dict
        self._create_lock = threading.RLock()  # one namespace creation at a time
        # Set by the engine (quotas): ``admit(namespace, existing, added, dimension,
        # metadata_sizes)`` runs under the namespace lock before the durable write and raises
        # to refuse it, so a refused batch writes nothing.
        self.admit: Callable[[str, int, int, int | None, Callable[[], Iterable[int]]], None] = (
            lambda *_args: None
        )
        # Set by the follower on a store shared by several nodes (engine/follow): catch up one
        # namespace, or all of them, with what other nodes committed, before using it.
        self.follow: Callable[[str], None] = _nothing
        self.follow_all: Callable[[], None] = _everything

    # ------------------------------------------------------------------ lifecycle
    def load(self) -> int:
        """Rebuild every namespace from the store (index snapshots make it fast); returns
        the number of records. Starts the background snapshot writer."""
        infos = [
            info
            for row in self.store.iter_rows("namespaces")
            if (info := NamespaceInfo.from_payload(row.payload)) is not None
        ]
        total = 0
        for info in infos:
            namespace = load_namespace(self.store, self.snapshots, self._new_namespace(info))
            total += len(namespace.records)
            with self._lock:
                self._namespaces[info.name] = namespace
        self.snapshotter.start()
        return total

    def reset(self) -> None:
        """Stop the snapshot writer and forget every namespace without snapshotting it (the
        store's contents were replaced underneath: a restore); ``load`` starts afresh."""
        self.snapshotter.stop()
        with self._lock:
            self._namespaces = {}

    def close(self) -> None:
        """Stop the snapshot writer and snapshot every namespace that changed."""
        self.snapshotter.stop()
        self.snapshotter.write(force=True)

    def write_snapshots(self, *, force: bool = False) -> int:
        """Snapshot namespaces that changed (``NamespaceSnapshotter.write``)."""
        return self.snapshotter.write(force=force)

    def _new_namespace(self, info: NamespaceInfo) -> VectorNamespace:
        return VectorNamespace(
            info, exact_threshold=self.exact_threshold, vector_source=self._stored_blob
        )

    def _stored_blob(self, name: str, record_id: str) -> bytes | None:
        row = self.store.get_row("vectors", record_id, name)
        return None if row is None else row.vector

    def reload(self, name: str) -> None:
        """Read namespace ``name`` again from the store (another node changed it): the new
        object replaces the held one, which is marked deleted so a write that holds it retries
        on the new one; a namespace no longer stored is dropped.

        The rows are read and the object swapped under the held namespace's lock, the one its
        local writers hold from commit to applying: a local write can then not commit between
        the read and the swap and be lost from the cache (seen on PostgreSQL as a bulk update
        missing from the very next query). A namespace not held yet may be being created here:
        its creator holds the creation lock from commit to adding it."""
        with self._lock:
            held = self._namespaces.get(name)
        with held.lock if held is not None else self._create_lock:
            row = self.store.get_row("namespaces", name)
            info = None if row is None else NamespaceInfo.from_payload(row.payload)
            fresh = None
            if info is not None:
                # No snapshot: its revision may have been claimed by two nodes writing at once.
                fresh = load_namespace(self.store, None, self._new_namespace(info))
            with self._lock:
                old = self._namespaces.pop(name, None)
                if fresh is not None:
                    self._namespaces[name] = fresh
            if old is not None:
                with old.lock:
                    old.deleted = True

    # ------------------------------------------------------------------ lookups
    def get(self, caller: Caller, name: str) -> VectorNamespace:
        """A data namespace the caller may see; 404 otherwise (missing and hidden look alike)."""
        if not isinstance(name, str) or not caller.can_see(name):
            raise not_found(str(name))
        self.follow(name)
        with self._lock:
            namespace = self._namespaces.get(name)
        if namespace is None:
            agent_id = name.removeprefix(AGENT_NAMESPACE_PREFIX)
            if agent_id != name and self.memories.agent(caller, agent_id) is not None:
                raise InvalidInput(
                    f"namespace '{name}' holds an agent's memories; use the memory routes for it"
                )
            raise not_found(name)
        return namespace

    def writer_lock(self, name: str) -> threading.RLock:
        """The lock a local writer of ``name`` holds from its commit to its index update: the
        namespace's own, or the creation lock while no namespace of that name is held."""
        with self._lock:
            held = self._namespaces.get(name)
        return held.lock if held is not None else self._create_lock

    def held_all(self) -> list[VectorNamespace]:
        """Every namespace this node holds (no visibility check, no catch-up)."""
        with self._lock:
            return list(self._namespaces.values())

    def held(self, name: str) -> VectorNamespace | None:
        """The data namespace held under ``name`` (no visibility check: for the server's own
        bookkeeping, such as quotas and index administration)."""
        with self._lock:
            return self._namespaces.get(name)

    def names(self, caller: Caller) -> dict[str, str]:
        """Visible namespaces → kind (``data`` or ``agent``), sorted by name."""
        self.follow_all()
        with self._lock:
            data = [n for n in self._namespaces if caller.can_see(n)]
        kinds = dict.fromkeys(data, "data")
        for agent_id in self.memories.agent_ids(caller):
            kinds[AGENT_NAMESPACE_PREFIX + agent_id] = "agent"
        return dict(sorted(kinds.items()))

    def describe(self, caller: Caller, name: str) -> NamespaceView:
        """A data or agent namespace's configuration and counts."""
        if name.startswith(AGENT_NAMESPACE_PREFIX) and caller.can_see(name):
            agent = self.memories.agent(caller, name[len(AGENT_NAMESPACE_PREFIX) :])
            if agent is not None:
                return NamespaceView.of_agent(name, agent.vectors, self.embedder.dimension)
        return self.get(caller, name).view()

    def describe_all(self, caller: Caller) -> list[NamespaceView]:
        """Every visible namespace, data and agent, described."""
        return [self.describe(caller, name) for name in self.names(caller)]

    # ------------------------------------------------------------------ namespace writes
    def create(
        self,
        caller: Caller,
        name: Any,
        *,
        dimension: Any,
        distance: Any = None,
        index_type: Any = None,
        encryption: Any = False,
        dimension_required: bool = True,
    ) -> tuple[NamespaceView, bool]:
        """Create ``name`` (``created=False`` if it exists with the same dimension).

        Names follow ``check_namespace_name``; names starting with ``_`` are internal and
        refused. Without ``dimension_required`` (the admin form) the dimension may come later,
        from the first vector.
        """
        name = check_namespace_name(name, "name")
        if dimension is None and dimension_required:
            raise UnprocessableContent("'dimension' is required to create a namespace")
        dimension = None if dimension is None else check_dimension(dimension)
        metric = check_distance(distance)
        kind = check_index_type(index_type)
        if not isinstance(encryption, bool):
            raise InvalidInput("'config.encryption' must be true or false")
        if encryption and isinstance(getattr(self.store, "codec", None), IdentityCodec):
            # One key encrypts the whole data directory; without it, "encrypted" would be a lie.
            raise InvalidInput(
                "'config.encryption' needs encryption at rest: set DAKERA_ENCRYPTION_KEY (with it "
                "every namespace is encrypted)"
            )
        if not caller.can_see(name):
            raise not_found(name)
        with self._create_lock:
            with self._lock:
                existing = self._namespaces.get(name)
            if existing is not None:
                if dimension is not None and existing.info.dimension not in (None, dimension):
                    raise DimensionMismatch(
                        f"namespace '{name}' exists with dimension {existing.info.dimension}, "
                        f"not {dimension}"
                    )
                if dimension is not None and existing.info.dimension is None:
                    self._configure(existing, dimension, existing.info.distance)
                return existing.view(), False
            now = int(self.clock())
            info = NamespaceInfo.new(
                name, dimension, metric, now, index_type=kind, encryption=encryption
            )
            namespace = self._new_namespace(info)
            self.store.write([Op.put("namespaces", name, info.to_payload())])
            with self._lock:
                self._namespaces[name] = namespace
        self.events.emit("namespace_created", namespace=name, details={"dimension": dimension})
        return namespace.view(), True

    def configure(
        self, caller: Caller, name: str, dimension: Any, distance: Any = None
    ) -> tuple[NamespaceView, bool]:
        """Create-or-update (``PUT``): the dimension must match an existing one; the
        distance may change (the index is rebuilt from the stored vectors)."""
        if dimension is None:
            raise UnprocessableContent("'dimension' is required")
        dimension = check_dimension(dimension)
        metric = check_distance(distance)
        with self._lock:
            existing = self._namespaces.get(name) if caller.can_see(name) else None
        if existing is None:
            return self.create(caller, name, dimension=dimension, distance=metric)
        namespace = self.get(caller, name)
        if namespace.info.dimension not in (None, dimension):
            raise DimensionMismatch(
                f"namespace '{name}' has dimension {namespace.info.dimension}, not {dimension}"
            )
        self._configure(namespace, dimension, metric)
        return namespace.view(), False

    def _configure(self, namespace: VectorNamespace, dimension: int, distance: Metric) -> None:
        with namespace.lock:
            info = namespace.info
            if info.dimension == dimension and info.distance == distance:
                return
            updated = replace(
                info,
                dimension=dimension,
                distance=distance,
                revision=info.revision + 1,
                updated_at=int(self.clock()),
            )
            index = namespace.reindexed(dimension, distance)
            self.store.write([Op.put("namespaces", info.name, updated.to_payload())])
            namespace.info = updated
            namespace.index = index

    def delete(self, caller: Caller, name: str) -> int:
        """Delete a namespace, its records, indexes and snapshot for good; returns how many
        vectors it held."""
        for _ in range(3):
            namespace = self.get(caller, name)  # 404 when it is gone for good
            with namespace.lock:
                if namespace.deleted:
                    continue  # replaced meanwhile by a reload from the store: look again
                count = namespace.vector_count()
                self.store.write(
                    [
                        Op.delete_group("vectors", name),
                        Op.delete_group("representations", name),  # engine/records
                        Op.delete("namespaces", name),
                    ]
                )
                namespace.deleted = True
                with self._lock:
                    self._namespaces.pop(name, None)
                namespace.text.clear()
                namespace.records.clear()
                namespace.index = None
            self.snapshots.remove(name)
            self.events.emit("namespace_deleted", namespace=name)
            return count
        raise Unavailable("the namespace changed while deleting it; retry")

    # ------------------------------------------------------------------ record writes
    def write(
        self,
        caller: Caller,
        name: str,
        build: Callable[[VectorNamespace, int, int], WritePlan],
        *,
        create: tuple[int | None, Metric] | None = None,
    ) -> WritePlan:
        """Run one record write: ``build(namespace, revision, now)`` checks the batch against
        the namespace and returns what to commit; ``create`` = (dimension, distance) makes a
        missing namespace on the way (the first upsert creates it)."""
        for _ in range(3):
            if not caller.can_see(name):
                raise not_found(name)
            self.follow(name)
            with self._lock:
                namespace = self._namespaces.get(name)
            if namespace is None:
                if create is None:
                    raise not_found(name)
                if name.startswith(AGENT_NAMESPACE_PREFIX):
                    self.get(caller, name)  # the agent-namespace explanation
                check_namespace_name(name, "namespace")
                with self._create_lock:
                    with self._lock:
                        if name in self._namespaces:
                            continue
                    info = NamespaceInfo.new(name, create[0], create[1], int(self.clock()))
                    namespace = self._new_namespace(info)
                    with namespace.lock:
                        plan = self._commit(namespace, build)
                        with self._lock:
                            self._namespaces[name] = namespace
                self.events.emit(
                    "namespace_created",
                    namespace=name,
                    details={"dimension": namespace.info.dimension},
                )
                self._emit_mutation(name, plan)
                return plan
            with namespace.lock:
                if namespace.deleted:
                    continue
                plan = self._commit(namespace, build)
            self._emit_mutation(name, plan)
            return plan
        raise Unavailable("the namespace changed while writing to it; retry")

    def _commit(
        self, namespace: VectorNamespace, build: Callable[[VectorNamespace, int, int], WritePlan]
    ) -> WritePlan:
        info = namespace.info
        now = int(self.clock())
        revision = info.revision + 1
        plan = build(namespace, revision, now)
        dimension = info.dimension if info.dimension is not None else plan.dimension
        if plan.op == "upserted":
            puts = [op.row for op in plan.ops if op.kind == "put" and op.row.table == "vectors"]
            added = len({row.key for row in puts if row.key not in namespace.records})
            self.admit(
                info.name,
                len(namespace.records),
                added,
                dimension,
                lambda: (len(orjson.dumps(orjson.loads(r.payload).get("m") or {})) for r in puts),
            )
        updated = replace(info, revision=revision, updated_at=now, dimension=dimension)
        self.store.write([*plan.ops, Op.put("namespaces", info.name, updated.to_payload())])
        namespace.info = updated
        if namespace.index is None and dimension is not None:
            namespace.index = namespace.new_index(dimension, updated.distance)
        plan.apply()
        return plan

    def _emit_mutation(self, name: str, plan: WritePlan) -> None:
        if plan.count:
            self.events.emit(
                "vectors_mutated", namespace=name, details={"op": plan.op, "count": plan.count}
            )

    def stored_vector(self, namespace: VectorNamespace, record_id: str) -> bytes | None:
        """The exact float32 bytes the store holds for a record (re-written unchanged when
        only its metadata or text changes)."""
        return self._stored_blob(namespace.name, record_id)

    def put_ops(
        self, namespace: VectorNamespace, records: Sequence[VectorRecord], vectors: list[Any]
    ) -> list[Op]:
        """Store operations for ``records`` with their vector bytes (or ``None``)."""
        return [
            Op.put("vectors", record.id, record.to_payload(), group=namespace.name, vector=blob)
            for record, blob in zip(records, vectors, strict=True)
        ]
