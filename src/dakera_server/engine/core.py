"""The engine as one object: opens the store, loads indexes, and holds every part.

``create_app``'s lifespan builds one ``Engine`` and puts it on ``app.state``; routers reach it
through ``EngineDep``. Nothing here knows about HTTP.
"""

from __future__ import annotations

import gc
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from dakera_server import API_VERSION, __version__
from dakera_server.config import Settings
from dakera_server.engine.ann.snapshots import SnapshotStore
from dakera_server.engine.attachments.service import AttachmentStore
from dakera_server.engine.documents.chunker import ChunkPlan
from dakera_server.engine.documents.limits import ImportLimits
from dakera_server.engine.documents.service import DocumentEngine
from dakera_server.engine.entities.service import EntityService
from dakera_server.engine.events.audit import AuditLog
from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.follow.follower import Follower
from dakera_server.engine.follow.pruning import ChangeLogPruner
from dakera_server.engine.graph.knowledge_graph import KnowledgeGraph
from dakera_server.engine.graph.model import Edge
from dakera_server.engine.keys.store import KeyStore
from dakera_server.engine.lifecycle.core import Lifecycle
from dakera_server.engine.lifecycle.policies import PolicyStore
from dakera_server.engine.media.lanes import media_engine
from dakera_server.engine.memory.engine import Clock, MemoryEngine
from dakera_server.engine.memory.sessions import SessionEngine
from dakera_server.engine.ops.cluster import DOCUMENT as MAINTENANCE_META
from dakera_server.engine.ops.diagnostics import process_facts
from dakera_server.engine.ops.history import PREFIX as HISTORY_PREFIX
from dakera_server.engine.ops.quotas import DOCUMENT as QUOTAS_META
from dakera_server.engine.ops.runtime import DOCUMENT as RUNTIME_META
from dakera_server.engine.ops.service import Operations
from dakera_server.engine.portability.service import Portability
from dakera_server.engine.records.service import RecordEngine
from dakera_server.engine.tasks.runner import TaskRunner
from dakera_server.engine.text.batcher import BATCH_WINDOW_SECONDS, MicroBatcher
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.engine.text.providers import create_provider
from dakera_server.engine.text.threads import (
    blas_description,
    embedding_threads,
    limit_numeric_threads,
    set_embedding_threads,
)
from dakera_server.engine.vectors.engine import NamespaceEngine
from dakera_server.errors import DakeraError
from dakera_server.storage.base import CurrentCodec, IdentityCodec, PayloadCodec, Store
from dakera_server.storage.factory import DB_FILE, open_blob_store, open_event_log, open_store

__all__ = ["DB_FILE", "Engine", "create_embedder", "node_identity"]

logger = logging.getLogger("dakera_server.engine")
NODE_ID_FILE = "node_id"
AUTOPILOT_META = "lifecycle.autopilot."  # config and counters (engine/lifecycle/state.py)
_T = TypeVar("_T")


def node_identity(configured: str | None, data_dir: Path) -> str:
    """This process's node name: ``DAKERA_NODE_ID``, else one made once per data directory
    (host name and a random suffix: two nodes on one host stay apart) and kept in it."""
    if configured:
        return configured
    path = data_dir / NODE_ID_FILE
    try:
        kept = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        kept = ""
    if kept:
        return kept
    made = f"{socket.gethostname() or 'node'}-{secrets.token_hex(3)}"
    path.write_text(made + "\n", encoding="utf-8")
    return made


def create_embedder(settings: Settings) -> EmbeddingProvider:
    """The embedding provider the settings ask for."""
    return create_provider(
        settings.embedding_provider,
        base_url=settings.embedding_url,
        model=settings.embedding_model,
        api_key=settings.embedding_api_key,
        dimension=settings.embedding_dimension,
    )


class Engine:
    """Every engine part over one store."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: EmbeddingProvider | None = None,
        clock: Clock = time.time,
        codec: PayloadCodec | None = None,
        store: Store | None = None,
    ) -> None:
        self.settings = settings
        self.started_at = time.time()
        limit_numeric_threads(settings.numeric_threads)
        set_embedding_threads(settings.embedding_threads)
        data_dir = Path(settings.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        # ``store`` comes from app.build_engine (backend chosen by DAKERA_STORAGE_URL, codec
        # from security.encryption.open_codec); without one, the settings' store, ``codec``.
        self.store = store or open_store(settings.storage_url, data_dir, codec)
        # Concurrent requests' texts share forward passes (engine/text/batcher.py).
        self.embedder: EmbeddingProvider = MicroBatcher(
            embedder or create_embedder(settings),
            window=BATCH_WINDOW_SECONDS if settings.embedding_passes else 0.0,
            passes=settings.embedding_passes,
        )
        self.events = EventBus(clock)
        # First sink, before anything can emit: ids continue after the persisted ones.
        self.audit = AuditLog(open_event_log(self.store, data_dir), self.events)
        self.policies = PolicyStore(self.store, self.events)
        shared = self.store.change_log is not None
        # A node's name matters where several share the store; the embedded server keeps the
        # host name its one-node cluster view has always shown (and writes no file for it).
        self.node_id = (
            node_identity(settings.node_id, data_dir)
            if shared
            else settings.node_id or socket.gethostname() or "node-1"
        )
        self.keys = KeyStore(
            self.store, self.events, clock=clock, node=self.node_id if shared else None
        )
        self.memories = MemoryEngine(
            self.store,
            self.embedder,
            max_content_bytes=settings.max_memory_content_bytes,
            exact_threshold=settings.exact_search_threshold,
            clock=clock,
            events=self.events,
        )
        self.memories.snapshots = SnapshotStore(data_dir / "snapshots", CurrentCodec(self.store))
        self.sessions = SessionEngine(
            self.memories,
            idle_timeout_secs=settings.session_idle_timeout_secs,
            events=self.events,
        )
        self.namespaces = NamespaceEngine(
            self.store,
            self.embedder,
            self.events,
            self.memories,
            data_dir=data_dir,
            exact_threshold=settings.exact_search_threshold,
            clock=clock,
        )
        self.entities = EntityService(
            self.store,
            ode_url=settings.ode_url,
            ode_allow_private=settings.ode_allow_private,
            max_content_bytes=settings.max_memory_content_bytes,
        )
        self.graph = KnowledgeGraph(
            self.memories, self.entities, similarity_threshold=settings.graph_similarity_threshold
        )
        self.memories.on_indexed.append(self.graph.memories_indexed)
        self.memories.on_forgotten.append(self.graph.memories_forgotten)
        self.sessions.link_summary = self._link_session_summary
        self.lifecycle = Lifecycle(
            self.store,
            self.memories,
            self.events,
            cpu_share=settings.background_cpu_percent / 100.0,
            autopilot_enabled=settings.autopilot_enabled,
            decay_interval_secs=settings.decay_interval_secs,
            ttl_interval_secs=settings.ttl_sweep_interval_secs,
            policy_for=self.policies.policy_for,
        )
        self._build_files(settings, data_dir, clock)
        self.ops = Operations(
            settings,
            self.store,
            self.events,
            memories=self.memories,
            namespaces=self.namespaces,
            sessions=self.sessions,
            graph=self.graph,
            lifecycle=self.lifecycle,
            version=API_VERSION,
            started_at=self.started_at,
            clock=clock,
            encrypted=not isinstance(self.store.codec, IdentityCodec),
        )
        self.portability = Portability(
            self.store,
            self.memories,
            self.events,
            backup_dir=Path(settings.backup_dir or data_dir / "backups"),
            server_version=__version__,
            codec=lambda: self.store.codec,
            blobs=self.attachments.blobs,  # attachment files travel in backups
            quiesce=self._quiesce,
            reload=self.reload,
            settle=self._settle_for_backup,
            clock=clock,
        )
        self.follower = self._build_follower()
        self.ops.cluster.node_id = self.node_id
        if shared:  # each node its own metrics history (ops.metrics.<node>.<s>)
            self.ops.history.prefix = f"{HISTORY_PREFIX}{self.node_id}."
        if self.follower is not None:
            self.ops.cluster.peers = self.store.nodes
            self.ops.cluster.store_problem = self.store_problem
            self.follower.beat = self._heartbeat
        self.ready = False

    def _build_follower(self) -> Follower | None:
        """On a store shared by several nodes, the follower that keeps this node's caches at
        the committed state (engine/follow); ``None`` on the embedded store."""
        log = self.store.change_log
        if log is None:
            return None
        follower = Follower(log, self.memories, self.namespaces, self.keys)
        follower.pruner = ChangeLogPruner(log, self.store.exclusive)
        self.memories.follow = follower.sync_agent
        self.memories.follow_all = lambda: follower.sync_all("agent/")
        self.namespaces.follow = follower.sync_namespace
        self.namespaces.follow_all = lambda: follower.sync_all("namespace/")
        self.keys.before_lookup = follower.sync_keys
        self.policies.follow = follower.sync_meta
        follower.appliers["sessions"] = self.sessions.reload_rows
        follower.appliers["edges"] = self.graph.reload_rows
        follower.appliers["trash"] = self.lifecycle.trash.reload_rows
        follower.appliers["meta"] = self._meta_changed
        hooks = getattr(self.store, "on_commit", None)
        if hooks is not None:
            hooks.append(follower.committed)
        return follower

    def _meta_changed(self, _group: str, keys: list[str]) -> None:
        """Meta rows another node changed: namespace policies, maintenance mode, quotas,
        runtime configuration, AutoPilot configuration and counters."""
        self.policies.reload_rows(keys)
        if MAINTENANCE_META in keys:
            self.ops.maintenance.load()
        if QUOTAS_META in keys:
            self.ops.quotas.load()
        if RUNTIME_META in keys:
            self.ops.runtime.load()
        if any(key.startswith(AUTOPILOT_META) for key in keys):
            self.lifecycle.autopilot.reload()

    def _heartbeat(self) -> None:
        """This node's heartbeat row (shared store): what the cluster routes list."""
        self.store.heartbeat(
            self.node_id,
            {
                "address": f"{self.settings.host}:{self.settings.port}",
                "version": API_VERSION,
                "started_at": int(self.started_at),
                "pid": os.getpid(),
                "vector_count": self.memories.counts()["memories"],
                "memory_bytes": process_facts()["memory_bytes"],
            },
        )

    def store_problem(self) -> str | None:
        """Why the shared store is not serving now (``None``: it is, or the store is embedded),
        for ``/health``: reads then come from the caches, writes answer 503."""
        if self.follower is None or self.follower.reachable:
            return None
        return "PostgreSQL unreachable, serving cached reads"

    def _build_files(self, settings: Settings, data_dir: Path, clock: Clock) -> None:
        """Attachments, documents, media jobs and records (issue 20)."""
        self.tasks = TaskRunner(clock=clock)
        self.attachments = AttachmentStore(
            self.store,
            open_blob_store(self.store, data_dir),
            self.memories,
            enabled=settings.attachments_enabled,
            max_bytes=settings.max_attachment_bytes,
            clock=clock,
        )
        self.memories.before_store.append(self.attachments.check_memory_refs)
        self.memories.on_forgotten.append(self.attachments.memories_forgotten)
        self.documents = DocumentEngine(
            self.store,
            self.memories,
            self.graph,
            self.attachments,
            self.tasks,
            enabled=settings.documents_enabled,
            defaults=ChunkPlan(
                settings.document_chunk_tokens, settings.document_chunk_overlap_tokens
            ),
            limits=ImportLimits(
                settings.document_max_pages,
                settings.document_max_text_bytes,
                settings.document_max_chunks,
            ),
            clock=clock,
        )
        self.media = media_engine(settings, self.attachments, self.memories, self.tasks, clock)
        self.records = RecordEngine(
            self.namespaces,
            enabled=settings.records_enabled,
            max_vectors=settings.record_max_vectors,
            max_bytes=settings.record_max_bytes,
        )

    def load(self) -> None:
        """Read the store into the in-memory indexes (start-up).

        Logs one ``start-up phases`` line with the seconds of each step (``bench/startup.py``
        reads it).
        """
        started = time.perf_counter()
        logger.info(
            "numeric: %s; embedding batches on %d thread(s)",
            blas_description(),
            embedding_threads(),
        )
        phases: dict[str, float] = {}
        if self.follower is not None:
            self.follower.baseline()  # before reading: what commits meanwhile is applied after
        # Bulk allocation of long-lived objects (a few per memory, entity and edge), none of it
        # garbage: collections triggered meanwhile only rescan them (10% of the memories phase
        # at 100,000 memories).
        collecting = gc.isenabled()
        gc.disable()
        try:
            count, sessions = self._load_phases(phases)
        finally:
            if collecting:
                gc.enable()
        self.ready = True
        if self.follower is not None:
            self.follower.start()
        self.graph.start_backfill()  # entities of memories stored without them (graph/load.py)
        self.lifecycle.start()  # background upkeep; resumes jobs a crash cut short
        self.portability.start()  # scheduled backups
        total = time.perf_counter() - started
        logger.info(
            "start-up phases: %s (total %.2f s)",
            ", ".join(f"{name} {seconds:.2f} s" for name, seconds in phases.items()),
            total,
        )
        logger.info("loaded %d memories and %d sessions in %.1f s", count, sessions, total)

    def _settle_for_backup(self) -> None:
        """Just before a backup's snapshot: write pending access statistics, and commit every
        pending full-text write. Until its commit a document is searched through the overlay
        while tantivy scores the committed ones on statistics without it, so a recall in the
        quarter second after a write ranked near-ties unlike a server restored from the backup
        (seen as recall order differing after a PostgreSQL restore); after this, searches score
        on the statistics the backup holds."""
        self.memories.counters.flush()
        for agent in self.memories.held_agents():
            agent.text.flush()
        for namespace in self.namespaces.held_all():
            namespace.text.flush()

    def _quiesce(self) -> None:
        """Stop every background writer and drop unsaved access statistics (a restore is
        about to replace the store's contents); ``reload`` restarts them."""
        self.ready = False
        self.lifecycle.reset()
        self.graph.reset()
        self.namespaces.reset()
        self.memories.reset()

    def reload(self) -> tuple[int, int]:
        """Drop every in-memory index and re-read the store, as at start-up (after a restore
        replaced the store's contents). Not ready meanwhile (health answers 503, gRPC
        UNAVAILABLE); the caller keeps requests out (the app's maintenance gate). Returns
        (memories, sessions) loaded."""
        self._quiesce()
        self.sessions.reset()
        self.entities.reset()
        self.keys.reload()
        self.policies.reload()
        if self.follower is not None:  # the caches restart from the heads the load will read
            self.follower.baseline()
        phases: dict[str, float] = {}
        count, sessions = self._load_phases(phases)
        self.ready = True
        self.graph.start_backfill()
        self.lifecycle.start()
        logger.info(
            "reloaded after a restore: %s",
            ", ".join(f"{name} {seconds:.2f} s" for name, seconds in phases.items()),
        )
        return count, sessions

    def _load_phases(self, phases: dict[str, float]) -> tuple[int, int]:
        """Each load step in order, its seconds into ``phases``; returns (memories, sessions)."""

        def timed(name: str, step: Callable[[], _T]) -> _T:
            begun = time.perf_counter()
            result = step()
            phases[name] = time.perf_counter() - begun
            return result

        count = timed("memories", self.memories.load)
        sessions = timed("sessions", self.sessions.load)
        timed("entities", self.entities.load)
        edges, extracted = timed("graph", self.graph.load)
        logger.info("loaded %d graph edges (entities extracted for %d memories)", edges, extracted)
        vectors = timed("namespaces", self.namespaces.load)
        logger.info("loaded %d namespace records", vectors)
        timed("lifecycle", self.lifecycle.load)
        timed("attachments", self.attachments.load)
        timed("documents", self.documents.load)
        timed("ops", self.ops.load)
        return count, sessions

    def _link_session_summary(self, agent_id: str, summary_id: str, memory_ids: list[str]) -> None:
        """Session end: a ``linked_by`` edge labelled ``session-summary`` from the summary
        memory to each memory of the session."""
        now = int(self.memories.clock())
        self.graph.add_edges(
            agent_id,
            [Edge(summary_id, m, "linked_by", 1.0, now, "session-summary") for m in memory_ids],
        )

    def close(self) -> None:
        """Persist pending access statistics and index snapshots, and close the store."""
        self.portability.close()  # a scheduled backup in progress finishes first
        self.tasks.close()  # waiting jobs are cancelled (jobs live in memory, by contract)
        self.lifecycle.stop()  # a running pass stops at its next batch boundary
        if self.follower is not None:
            self.follower.stop()
            try:  # a node stopped on purpose leaves the cluster view at once
                self.store.forget_node(self.node_id)
            except DakeraError as exc:
                logger.warning("heartbeat row not removed: %s", exc.message)
        self.graph.close()  # a start-up entity backfill still running stops
        self.memories.counters.flush()
        self.memories.save_snapshots()
        self.namespaces.close()
        self.keys.usage.flush()
        self.ops.close()  # last counter snapshot, before the store closes
        self.audit.close()
        self.store.close()
