"""The engine as one object: opens the store, loads indexes, and holds every part.

``create_app``'s lifespan builds one ``Engine`` and puts it on ``app.state``; routers reach it
through ``EngineDep``. Nothing here knows about HTTP.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from dakera_server.config import Settings
from dakera_server.engine.embeddings import EmbeddingProvider, create_provider
from dakera_server.engine.memories import Clock, MemoryEngine
from dakera_server.engine.sessions import SessionEngine
from dakera_server.storage.sqlite import SqliteStore

__all__ = ["Engine", "create_embedder"]

logger = logging.getLogger("dakera_server.engine")


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
    ) -> None:
        self.settings = settings
        self.started_at = time.time()
        data_dir = Path(settings.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.store = SqliteStore(data_dir / "dakera.db")
        self.embedder = embedder or create_embedder(settings)
        self.memories = MemoryEngine(
            self.store,
            self.embedder,
            max_content_bytes=settings.max_memory_content_bytes,
            exact_threshold=settings.exact_search_threshold,
            clock=clock,
        )
        self.sessions = SessionEngine(
            self.memories, idle_timeout_secs=settings.session_idle_timeout_secs
        )
        self.ready = False

    def load(self) -> None:
        """Read the store into the in-memory indexes (start-up)."""
        started = time.perf_counter()
        count = self.memories.load()
        sessions = self.sessions.load()
        self.ready = True
        logger.info(
            "loaded %d memories and %d sessions in %.1f s",
            count,
            sessions,
            time.perf_counter() - started,
        )

    def close(self) -> None:
        """Persist pending access statistics and close the store."""
        self.memories.flush_access_stats()
        self.store.close()
