"""The engine as one object: opens the store, loads indexes, and holds every part.

``create_app``'s lifespan builds one ``Engine`` and puts it on ``app.state``; routers reach it
through ``EngineDep``. Nothing here knows about HTTP.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from dakera_server import API_VERSION
from dakera_server.config import Settings
from dakera_server.engine.ann.snapshots import SnapshotStore
from dakera_server.engine.attachments.service import AttachmentStore
from dakera_server.engine.documents.chunker import ChunkPlan
from dakera_server.engine.documents.limits import ImportLimits
from dakera_server.engine.documents.service import DocumentEngine
from dakera_server.engine.entities.service import EntityService
from dakera_server.engine.events.audit import AuditLog
from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.graph.knowledge_graph import KnowledgeGraph
from dakera_server.engine.graph.model import Edge
from dakera_server.engine.keys.store import KeyStore
from dakera_server.engine.lifecycle.core import Lifecycle
from dakera_server.engine.lifecycle.policies import PolicyStore
from dakera_server.engine.media.lanes import media_engine
from dakera_server.engine.memory.engine import Clock, MemoryEngine
from dakera_server.engine.memory.sessions import SessionEngine
from dakera_server.engine.ops.service import Operations
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
from dakera_server.storage.base import CurrentCodec, IdentityCodec, PayloadCodec
from dakera_server.storage.blobs import FileBlobStore
from dakera_server.storage.eventlog import EVENT_LOG_FILE, SqliteEventLog
from dakera_server.storage.sqlite import SqliteStore

__all__ = ["Engine", "create_embedder"]

logger = logging.getLogger("dakera_server.engine")
_T = TypeVar("_T")
DB_FILE = "dakera.db"


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
    ) -> None:
        self.settings = settings
        self.started_at = time.time()
        limit_numeric_threads(settings.numeric_threads)
        set_embedding_threads(settings.embedding_threads)
        data_dir = Path(settings.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        # ``codec`` comes from security.encryption.open_codec (None: plaintext store).
        self.store = SqliteStore(data_dir / DB_FILE, codec)
        # Concurrent requests' texts share forward passes (engine/text/batcher.py).
        self.embedder: EmbeddingProvider = MicroBatcher(
            embedder or create_embedder(settings),
            window=BATCH_WINDOW_SECONDS if settings.embedding_passes else 0.0,
            passes=settings.embedding_passes,
        )
        self.events = EventBus(clock)
        # First sink, before anything can emit: ids continue after the persisted ones.
        self.audit = AuditLog(
            SqliteEventLog(data_dir / EVENT_LOG_FILE, self.store.codec), self.events
        )
        self.policies = PolicyStore(self.store, self.events)
        self.keys = KeyStore(self.store, self.events, clock=clock)
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
        self.ready = False

    def _build_files(self, settings: Settings, data_dir: Path, clock: Clock) -> None:
        """Attachments, documents, media jobs and records (issue 20)."""
        self.tasks = TaskRunner(clock=clock)
        self.attachments = AttachmentStore(
            self.store,
            FileBlobStore(data_dir / "attachments"),
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
        self.graph.start_backfill()  # entities of memories stored without them (graph/load.py)
        self.lifecycle.start()  # background upkeep; resumes jobs a crash cut short
        total = time.perf_counter() - started
        logger.info(
            "start-up phases: %s (total %.2f s)",
            ", ".join(f"{name} {seconds:.2f} s" for name, seconds in phases.items()),
            total,
        )
        logger.info("loaded %d memories and %d sessions in %.1f s", count, sessions, total)

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
        self.tasks.close()  # waiting jobs are cancelled (jobs live in memory, by contract)
        self.lifecycle.stop()  # a running pass stops at its next batch boundary
        self.graph.close()  # a start-up entity backfill still running stops
        self.memories.flush_access_stats()
        self.memories.save_snapshots()
        self.namespaces.close()
        self.keys.usage.flush()
        self.ops.close()  # last counter snapshot, before the store closes
        self.audit.close()
        self.store.close()
