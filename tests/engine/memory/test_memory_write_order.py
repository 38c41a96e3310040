"""Concurrent writes to the same memories: the store and the indexes must end up agreeing.

Update, importance and forget used to write the store outside the agent's lock, so a forget
racing an update could be undone in the store (the update's row written after the delete) while
the index had dropped the memory: gone until the next restart, then back. Every write now
commits and re-indexes under the agent's lock, so a fresh engine reading the store sees exactly
what the running one serves.
"""

from __future__ import annotations

import threading
from pathlib import Path

from dakera_server.engine.access import Caller, Scope
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.writes import NewMemory
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.errors import MemoryNotFound
from dakera_server.storage.sqlite import SqliteStore

ROOT = Caller("root", "root", Scope.SUPER_ADMIN)


def _engine(path: Path, embedder: EmbeddingProvider) -> MemoryEngine:
    engine = MemoryEngine(SqliteStore(path), embedder, max_content_bytes=10_000, exact_threshold=50)
    engine.load()
    return engine


def test_racing_updates_and_forgets_leave_store_and_index_in_agreement(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    path = tmp_path / "db.sqlite"
    engine = _engine(path, embedder)
    items = [
        NewMemory(agent_id="a", content=f"note number {i} about the garden") for i in range(40)
    ]
    ids = [m.id for m in engine.store(ROOT, items).memories]
    errors: list[BaseException] = []

    def update_all(round_: int) -> None:
        for memory_id in ids:
            try:
                engine.update(ROOT, "a", memory_id, {"importance": 0.1 + round_ / 10})
                engine.set_importance(ROOT, "a", [memory_id], 0.9)
            except MemoryNotFound:
                pass  # forgotten first: a 404 is the right answer
            except BaseException as exc:
                errors.append(exc)

    def forget_half() -> None:
        for memory_id in ids[::2]:
            engine.forget(ROOT, "a", [memory_id])

    threads = [threading.Thread(target=update_all, args=(r,)) for r in range(3)]
    threads.append(threading.Thread(target=forget_half))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    served = {m.id: m.importance for m in engine.agent(ROOT, "a").memories.values()}
    assert set(served) == set(ids[1::2])
    reread = _engine(path, embedder)
    stored = {m.id: m.importance for m in reread.agent(ROOT, "a").memories.values()}
    assert stored == served
