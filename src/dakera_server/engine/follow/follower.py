"""The per-node follower of the change log (docs/scale-out.md, "coherence").

Truth is the log, never the notices: ``sync(group)`` reads the group's head (one indexed point
read) and, when it is past the node's cursor, reads ``changes_after(cursor)`` and reloads each
row a change names (a deleted row is dropped). The node's own writes move its cursor without a
read when nothing else committed in the group meanwhile (``GroupCommit.previous`` equals the
cursor); otherwise the next sync re-applies them, which is harmless (a row is reloaded as it is
in the store). Changes are applied under the agent's (or namespace's) lock, the same lock local
writers hold from their commit to their index update, so a reload never lands over a newer local
write.

Cursors start from every group's head read *before* the start-up load: a change committed
during the load is applied again afterwards, never missed (numbers are not commit-ordered
across groups, so no single "latest" number could serve as the start).

While the store cannot be reached, reads are served from the caches as they are (a failed
catch-up marks the store unreachable for ``RETRY_SECONDS``; requests meanwhile do not wait on
it), and the first sync after it comes back catches up from the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

import numpy as np

from dakera_server.engine.follow.pruning import ChangeLogPruner
from dakera_server.engine.keys.store import KeyStore
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.models import Memory
from dakera_server.engine.vectors.catchup import apply_changed_rows
from dakera_server.engine.vectors.engine import NamespaceEngine
from dakera_server.errors import Unavailable
from dakera_server.storage.base import Change, ChangeListener, ChangeLog, GroupCommit

__all__ = ["Follower"]

logger = logging.getLogger("dakera_server.follow")

RETRY_SECONDS = 2.0
HEARTBEAT_SECONDS = 5.0
LISTEN_TIMEOUT = 1.0
AGENT = "agent/"
NAMESPACE = "namespace/"
META = "meta"


class Follower:
    """Keeps one node's memory, namespace and key caches at the store's committed state."""

    def __init__(
        self,
        log: ChangeLog,
        memories: MemoryEngine,
        namespaces: NamespaceEngine,
        keys: KeyStore,
    ) -> None:
        self.log = log
        self.memories = memories
        self.namespaces = namespaces
        self.keys = keys
        # Other cached tables: table → reload(row_group, keys), run after memories are applied
        # (sessions, graph rows of an agent; ``meta`` rows: policies).
        self.appliers: dict[str, Callable[[str, list[str]], None]] = {}
        self._cursors: dict[str, int] = {}
        self._cursor_lock = threading.Lock()
        self._group_locks: dict[str, threading.Lock] = {}
        self._down_until = 0.0
        self._listening = True  # the LISTEN connection is up (assumed at start: load just read)
        self.last_error: str | None = None
        self.applied = 0  # changes applied from other nodes (metrics, tests)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Set by the engine: write this node's heartbeat row (every HEARTBEAT_SECONDS).
        self.beat: Callable[[], None] = lambda: None
        self._last_beat = 0.0
        # Set by the engine: change-log retention, run from this thread (once per cluster).
        self.pruner: ChangeLogPruner | None = None

    # ------------------------------------------------------------------ wiring
    def baseline(self) -> None:
        """Every group's head, read before the start-up load (the cursors' start)."""
        with self._cursor_lock:
            self._cursors = dict(self.log.heads_all())

    def committed(self, receipts: Iterable[GroupCommit]) -> None:
        """The store's commit hook: this node's own write moved these groups' heads."""
        with self._cursor_lock:
            for receipt in receipts:
                if self._cursors.get(receipt.group, 0) == receipt.previous:
                    self._cursors[receipt.group] = receipt.seq

    def start(self) -> None:
        """The wake-up thread: LISTEN, and catch up groups as notices arrive."""
        self._thread = threading.Thread(target=self._listen, name="dakera-follow", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def reachable(self) -> bool:
        """False while the LISTEN connection is down or a recent catch-up failed (what
        ``/health`` reports: reads are then served from the caches as they are)."""
        return self._listening and time.monotonic() >= self._down_until

    # ------------------------------------------------------------------ catching up
    def sync_agent(self, agent_id: str) -> None:
        """Before a read of ``agent_id``: apply what other nodes committed to it (and to the
        meta rows, policies, in the same round trip)."""
        self.sync(AGENT + agent_id, META)

    def sync_namespace(self, name: str) -> None:
        """Before a read of data namespace ``name`` (and of the meta rows)."""
        self.sync(NAMESPACE + name, META)

    def sync_meta(self) -> None:
        """Before a policy read."""
        self.sync(META)

    def sync_keys(self) -> None:
        """Before an API-key lookup: keys created, revoked or rotated on another node."""
        self._guarded(self.keys.refresh_if_changed)

    def sync_all(self, prefix: str) -> None:
        """Before a read that spans every group of a kind (list agents, get by id alone)."""

        def work() -> None:
            heads = self.log.heads_all(prefix)
            with self._cursor_lock:
                behind = [g for g, seq in heads.items() if seq > self._cursors.get(g, 0)]
            for group in behind:
                self._catch_up(group, heads[group])

        self._guarded(work)

    def sync(self, *groups: str) -> None:
        """Bring ``groups`` to their committed heads (one read of the heads; no-op while the
        store is unreachable)."""

        def work() -> None:
            for group, head in self.log.heads(groups).items():
                self._catch_up(group, head)

        self._guarded(work)

    def _guarded(self, work: Callable[[], object]) -> None:
        if not self.reachable:
            return
        try:
            work()
        except Unavailable as exc:
            self._down_until = time.monotonic() + RETRY_SECONDS
            if self.last_error is None:
                logger.warning("store unreachable, serving cached reads: %s", exc.message)
            self.last_error = exc.message
        else:
            if self.last_error is not None:
                logger.info("store reachable again; caches caught up")
            self.last_error = None

    def _lock_of(self, group: str) -> threading.Lock | threading.RLock:
        """An agent group catches up under the agent's own lock (the one its local writers and
        recalls hold, and may hold when they ask for a catch-up: one lock, no ordering to get
        wrong); a namespace group under the namespace's lock, or while it is not held under the
        lock its creator holds. Either way a local writer holds that lock from its commit to
        moving the cursor, so a notice of the node's own write that arrives first waits, then
        finds the cursor moved, instead of reloading the namespace and swapping out the object
        a request is about to delete (a 404 for a namespace that exists, seen in CI)."""
        if group.startswith(AGENT):
            agent = self.memories.held(group[len(AGENT) :], create=True)
            assert agent is not None
            return agent.lock
        if group.startswith(NAMESPACE):
            return self.namespaces.writer_lock(group[len(NAMESPACE) :])
        with self._cursor_lock:
            lock = self._group_locks.get(group)
            if lock is None:
                lock = self._group_locks[group] = threading.Lock()
            return lock

    def _catch_up(self, group: str, head: int) -> None:
        with self._cursor_lock:
            if head <= self._cursors.get(group, 0):
                return
        with self._lock_of(group):
            with self._cursor_lock:
                cursor = self._cursors.get(group, 0)
            while cursor < head:
                changes = self.log.changes_after(group, cursor)
                if changes is None or not changes:
                    # Pruned below our cursor (or nothing readable): reload the whole group.
                    self._reload(group)
                    reached = head
                else:
                    self._apply(group, changes)
                    reached = changes[-1].seq
                with self._cursor_lock:
                    cursor = max(self._cursors.get(group, 0), reached)
                    self._cursors[group] = cursor

    # ------------------------------------------------------------------ applying
    def _apply(self, group: str, changes: list[Change]) -> None:
        self.applied += len(changes)
        if group.startswith(NAMESPACE):
            held = self.namespaces.held(group[len(NAMESPACE) :])
            # Row by row when it can (a foreign one-vector upsert used to rebuild the whole
            # index); the whole namespace otherwise. The namespace's lock is held here.
            if held is None or not apply_changed_rows(self.namespaces.store, held, changes):
                self._reload(group)
            return
        if group.startswith(AGENT):
            agent_id = group[len(AGENT) :]
            mine = [c for c in changes if c.table == "memories"]
            if any(c.op == "delete_group" for c in mine):
                self._reload(group)
            elif mine:
                self._reload_memories(agent_id, list(dict.fromkeys(c.key for c in mine)))
        for table, reload in self.appliers.items():
            mine = [c for c in changes if c.table == table]
            by_group: dict[str, list[str]] = {}
            for change in mine:
                if change.op == "delete_group":
                    continue  # whole-agent deletes also name each memory; see docs/scale-out.md
                by_group.setdefault(change.row_group, []).append(change.key)
            for row_group, keys in by_group.items():
                reload(row_group, list(dict.fromkeys(keys)))

    def _reload(self, group: str) -> None:
        if group.startswith(AGENT):
            agent_id = group[len(AGENT) :]
            stored = [row.key for row in self.memories.storage.iter_rows("memories", agent_id)]
            agent = self.memories.held(agent_id)
            held = [] if agent is None else list(agent.memories)
            self._reload_memories(agent_id, list(dict.fromkeys([*held, *stored])))
        elif group.startswith(NAMESPACE):
            self.namespaces.reload(group[len(NAMESPACE) :])

    def _reload_memories(self, agent_id: str, keys: list[str]) -> None:
        """Reload these memories of ``agent_id`` from the store (rows read in one query), under
        the agent's lock.

        A memory whose content and vector are what the node holds (an access-statistics
        flush, or this node's own write seen again) only has its object swapped: re-indexing
        it would cost a vector insert, and in the full-text index a replaced document stays
        in tantivy's statistics until a merge, shifting every BM25 score of the agent (a
        restored server, built fresh, then ranked near-ties differently from its origin)."""
        agent = self.memories.held(agent_id, create=True)
        assert agent is not None
        dimension = self.memories.embedder.dimension
        with agent.lock:
            present: list[Memory] = []
            changed: list[Memory] = []
            vectors: list[np.ndarray] = []
            gone: list[str] = []
            rows = self.memories.storage.get_rows("memories", keys, agent_id)
            for key in keys:
                row = rows.get(key)
                if row is None:
                    gone.append(key)
                    continue
                memory = Memory.from_payload(row.payload)
                if row.vector is None or len(row.vector) != dimension * 4:
                    continue
                vector = np.frombuffer(row.vector, dtype=np.float32)
                present.append(memory)
                held = agent.memories.get(key)
                if held is not None:
                    self.memories.counters.carry(held, memory)
                if held is not None and held.content == memory.content:
                    indexed = agent.vectors.get_vector(key)
                    if indexed is not None and np.array_equal(indexed, vector):
                        # Always the new object: ``AccessCounters.carry`` made it the one to flush.
                        agent.replace_text(memory, None)
                        continue
                changed.append(memory)
                vectors.append(vector)
            if changed:
                agent.put_many(changed, np.stack(vectors))
            removed = agent.remove(gone)
        self.memories.adopt_remote(agent_id, present, removed)

    # ------------------------------------------------------------------ wake-ups
    def _listen(self) -> None:
        listener: ChangeListener | None = None
        while not self._stop.is_set():
            try:
                if time.monotonic() - self._last_beat >= HEARTBEAT_SECONDS:
                    self._last_beat = time.monotonic()
                    self.beat()
                if self.pruner is not None and self.pruner.due():
                    self.pruner.tick()
                if listener is None:
                    listener = self.log.listen()
                    self._listening = True
                    self._down_until = 0.0
                    self._catch_up_held()  # notices may have been missed meanwhile
                for notice in listener.wait(LISTEN_TIMEOUT):
                    if notice.group == "keys/key":
                        self.sync_keys()
                    elif self._holds(notice.group):
                        self.sync(notice.group)
            except Unavailable as exc:
                if self._listening:
                    logger.warning("store unreachable, serving cached reads: %s", exc.message)
                self._listening = False
                if listener is not None:
                    listener.close()
                    listener = None
                self._stop.wait(RETRY_SECONDS)
            except Exception:  # a failing apply must not end the thread
                logger.exception("following the change log failed; retrying")
                self._stop.wait(RETRY_SECONDS)
        if listener is not None:
            listener.close()

    def _holds(self, group: str) -> bool:
        if group.startswith(AGENT):
            return self.memories.held(group[len(AGENT) :]) is not None
        if group.startswith(NAMESPACE):
            return True
        return group == META

    def _catch_up_held(self) -> None:
        self.sync(META)
        self.sync_all(AGENT)
        self.sync_all(NAMESPACE)
        self.sync_keys()
