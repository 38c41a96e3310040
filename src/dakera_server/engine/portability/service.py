"""``Portability``: the backup, schedule, restore and import parts over one store."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.portability.backups import BackupManager
from dakera_server.engine.portability.gate import MaintenanceGate
from dakera_server.engine.portability.imports import ImportManager
from dakera_server.engine.portability.restore import RestoreManager
from dakera_server.engine.portability.schedule import BackupScheduler
from dakera_server.storage.base import PayloadCodec, Store
from dakera_server.storage.blobs import BlobStore

__all__ = ["Portability"]


class Portability:
    """Everything that moves data in and out of the server, built once by ``Engine``."""

    def __init__(
        self,
        store: Store,
        memories: MemoryEngine,
        events: EventBus,
        *,
        backup_dir: Path,
        server_version: str,
        codec: Callable[[], PayloadCodec],
        blobs: BlobStore,
        quiesce: Callable[[], object],
        reload: Callable[[], object],
        settle: Callable[[], object],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.gate = MaintenanceGate()
        self.backups = BackupManager(
            store,
            backup_dir,
            events,
            server_version=server_version,
            codec=codec,
            blobs=blobs,
            before_snapshot=settle,
            clock=clock,
        )
        self.schedule = BackupScheduler(self.backups)
        self.restores = RestoreManager(
            store, self.backups, events, self.gate, quiesce=quiesce, reload=reload, clock=clock
        )
        self.imports = ImportManager(memories, store, events)

    def start(self) -> None:
        """Start scheduled backups (once the engine is loaded)."""
        self.schedule.start()

    def close(self) -> None:
        """Stop scheduled backups (one in progress finishes first)."""
        self.schedule.stop()
