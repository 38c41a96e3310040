"""Index, full-text, derived-data and storage upkeep an operator can run on request.

Each action runs as a job of the lifecycle ``JobRegistry`` (so it shows in ``/ops/jobs`` and
never overlaps a heavy background pass) and answers what it really did:

* ``rebuild``/``optimize``: a fresh vector index from the vectors held, swapped in under the
  namespace's (or agent's) lock; an agent's BM25 index is rebuilt too. HNSW graphs are built
  again by the background indexer (``pending`` shows its progress), which also drops the space
  hnswlib keeps for deleted vectors.
* ``fulltext_reindex``: agent memories missing from their BM25 index are added (the index is
  rebuilt from the store at every start, so on a healthy server nothing is missing).
* ``derivations``: what this server derives after a write — entities (a start-up backfill),
  HNSW links (the background indexer), BM25 commits — and a drain that waits for all of it.
* ``compact``: the store's own compaction, through the ``Store`` contract.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from dakera_server.engine.access import AGENT_NAMESPACE_PREFIX
from dakera_server.engine.ann import create_index
from dakera_server.engine.graph.knowledge_graph import KnowledgeGraph
from dakera_server.engine.lifecycle.jobs import JobContext, JobRegistry
from dakera_server.engine.lifecycle.state import SYSTEM
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.ops.inventory import Inventory
from dakera_server.engine.text.fulltext import FullTextIndex
from dakera_server.engine.vectors.engine import NamespaceEngine
from dakera_server.errors import Conflict, InvalidInput, NamespaceNotFound
from dakera_server.storage.base import Store

__all__ = ["Upkeep"]

MAX_DRAIN_SECONDS = 600


class Upkeep:
    """On-request upkeep over the engines (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        memories: MemoryEngine,
        namespaces: NamespaceEngine,
        graph: KnowledgeGraph,
        jobs: JobRegistry,
        inventory: Inventory,
    ) -> None:
        self.store = store
        self.memories = memories
        self.namespaces = namespaces
        self.graph = graph
        self.jobs = jobs
        self.inventory = inventory
        self._draining = threading.Lock()
        self.last_rebuild: dict[str, int] = {}

    # ------------------------------------------------------------------ indexes
    def _targets(self, namespace: Any) -> list[str]:
        if namespace is None:
            return self.inventory.names()
        if not isinstance(namespace, str) or self.inventory.facts(namespace) is None:
            raise NamespaceNotFound(f"namespace '{namespace}' not found", resource="namespace")
        return [namespace]

    def _rebuild_one(self, name: str) -> int:
        """Swap in a fresh index for one namespace; returns the vectors it holds."""
        if name.startswith(AGENT_NAMESPACE_PREFIX):
            agent = self.memories.agent(SYSTEM, name[len(AGENT_NAMESPACE_PREFIX) :])
            if agent is not None:
                with agent.lock:
                    ids = list(agent.memories)
                    index = create_index(
                        self.memories.embedder.dimension,
                        "cosine",
                        exact_threshold=self.memories.exact_threshold,
                    )
                    rows = [agent.vectors.get_vector(i) for i in ids]
                    kept = [(i, r) for i, r in zip(ids, rows, strict=True) if r is not None]
                    if kept:
                        index.upsert([i for i, _ in kept], np.stack([r for _, r in kept]))
                    text = FullTextIndex()
                    text.upsert([(m.id, m.content) for m in agent.memories.values()])
                    agent.vectors, agent.text = index, text
                self.last_rebuild[name] = int(time.time())
                return len(kept)
        namespace = self.namespaces.held(name)
        if namespace is None:
            return 0
        with namespace.lock:
            info = namespace.info
            if namespace.deleted or info.dimension is None or namespace.index is None:
                return 0
            old = namespace.index
            ids = [r.id for r in namespace.records.values() if r.has_vector]
            pairs = [(i, old.get_vector(i)) for i in ids]
            kept_rows = [(i, r) for i, r in pairs if r is not None]
            index = namespace.new_index(info.dimension, info.distance)
            if kept_rows:
                index.upsert([i for i, _ in kept_rows], np.stack([r for _, r in kept_rows]))
            namespace.index = index
        self.last_rebuild[name] = int(time.time())
        return len(kept_rows)

    def rebuild(self, namespace: Any = None, *, kind: str = "index_rebuild") -> dict[str, Any]:
        """Rebuild the vector (and agent BM25) indexes of one namespace or all of them."""
        targets = self._targets(namespace)

        def work(context: JobContext) -> dict[str, Any]:
            rebuilt: dict[str, int] = {}
            for done, name in enumerate(targets, start=1):
                rebuilt[name] = self._rebuild_one(name)
                context.progress(done, len(targets))
            return {"namespaces": rebuilt, "vectors": sum(rebuilt.values())}

        job = self.jobs.run(kind, {"namespace": namespace}, work, throttle=False)
        vectors = int(job.result.get("vectors", 0))
        return {
            "success": True,
            "job_id": job.id,
            "status": job.status,
            "namespaces": sorted(job.result.get("namespaces", {})),
            "vectors": vectors,
            "message": f"rebuilt the indexes of {len(targets)} namespace(s) ({vectors} vectors);"
            " HNSW graphs are rebuilt in the background",
        }

    def optimize(self, namespace: str) -> dict[str, Any]:
        """Rebuild one namespace's indexes (drops hnswlib's deleted-vector space)."""
        answer = self.rebuild(namespace, kind="optimize")
        return {**answer, "optimized": True, "namespace": namespace}

    # ------------------------------------------------------------------ full text
    def fulltext_reindex(self, namespace: Any = None) -> dict[str, Any]:
        """Add agent memories missing from their BM25 index; report per namespace."""
        if namespace is not None and (
            not isinstance(namespace, str) or not namespace.startswith(AGENT_NAMESPACE_PREFIX)
        ):
            raise InvalidInput(
                "'namespace' must be an agent namespace (_dakera_agent_<agent id>); data "
                "namespaces index their text when it is written"
            )
        agents = (
            self.memories.agent_ids(SYSTEM)
            if namespace is None
            else [namespace[len(AGENT_NAMESPACE_PREFIX) :]]
        )

        def work(context: JobContext) -> dict[str, Any]:
            details = []
            for done, agent_id in enumerate(agents, start=1):
                agent = self.memories.agent(SYSTEM, agent_id)
                if agent is None:
                    continue
                with agent.lock:
                    missing = [m for m in agent.memories.values() if m.id not in agent.text]
                    if missing:
                        agent.text.upsert([(m.id, m.content) for m in missing])
                    scanned = len(agent.memories)
                details.append(
                    {
                        "namespace": AGENT_NAMESPACE_PREFIX + agent_id,
                        "vectors_scanned": scanned,
                        "newly_indexed": len(missing),
                        "already_indexed": scanned - len(missing),
                        "parse_failures": 0,
                    }
                )
                context.progress(done, len(agents))
            return {"details": details}

        job = self.jobs.run("fulltext_reindex", {"namespace": namespace}, work, throttle=False)
        details = job.result.get("details", [])
        return {
            "namespaces_processed": len(details),
            "total_indexed": sum(d["newly_indexed"] for d in details),
            "total_skipped": sum(d["already_indexed"] for d in details),
            "details": details,
            "job_id": job.id,
        }

    # ------------------------------------------------------------------ derived data
    def derivations(self) -> dict[str, Any]:
        """Derived data still owed: entities (start-up backfill), HNSW links, BM25 commits."""
        backfill = self.graph.backfill
        entities_owed = 0 if backfill is None else max(0, backfill.total - backfill.extracted)
        if backfill is not None and backfill.wait_all(0):
            entities_owed = 0
        facts = self.inventory.all()
        hnsw_owed = sum(f.pending for f in facts)
        dirty = sorted(f.name for f in facts if f.pending)
        running = self._draining.locked()
        return {
            "settled": entities_owed == 0 and hnsw_owed == 0 and not running,
            "pending_sentences": 0,
            "pending_parents": 0,
            "bm25_missing": 0,
            "graph_owed": entities_owed,
            "index_owed": hnsw_owed,
            "in_flight": int(running),
            "graph_queue_owed": 0,
            "dirty_namespaces": dirty,
            "namespaces": sum(1 for f in facts if f.kind == "agent"),
            "unreadable_namespaces": [],
            "heal": None,
            "reconciler": {
                "state": "running" if running else "idle",
                "last_tick_at": None,
                "ticks": 0,
                "next_namespace": dirty[0] if dirty else None,
            },
            "counters": {
                "entities_extracted": 0 if backfill is None else backfill.extracted,
                "entities_backfill_total": 0 if backfill is None else backfill.total,
            },
        }

    def drain(self, timeout_secs: Any = None) -> dict[str, Any]:
        """Wait until nothing is owed (or the timeout); 409 while another drain runs."""
        if timeout_secs is None:
            timeout = float(MAX_DRAIN_SECONDS)
        elif isinstance(timeout_secs, bool) or not isinstance(timeout_secs, int | float):
            raise InvalidInput("'timeout_secs' must be a number of seconds")
        else:
            timeout = float(timeout_secs)
        if not 0 <= timeout <= MAX_DRAIN_SECONDS:
            raise InvalidInput(f"'timeout_secs' must be from 0 to {MAX_DRAIN_SECONDS}")
        if not self._draining.acquire(blocking=False):
            raise Conflict("a derivation drain is already running")
        started = time.monotonic()
        rounds = 0
        try:
            deadline = started + timeout
            backfill = self.graph.backfill
            if backfill is not None:
                rounds += 1
                backfill.wait_all(max(0.0, deadline - time.monotonic()))
            for facts in self.inventory.all():
                if facts.pending:
                    rounds += 1
                    self._wait_indexed(facts.name, max(0.0, deadline - time.monotonic()))
        finally:
            self._draining.release()
        status = self.derivations()
        return {
            "settled": status["settled"],
            "timed_out": not status["settled"],
            "rounds": rounds,
            "elapsed_ms": int((time.monotonic() - started) * 1000),
            "parents_run": 0,
            "pending_left": 0,
            "deleted": 0,
            "bm25_restored": 0,
            "graph_queued": 0,
            "status": status,
        }

    def _wait_indexed(self, name: str, timeout: float) -> None:
        index: Any
        if name.startswith(AGENT_NAMESPACE_PREFIX):
            agent = self.memories.agent(SYSTEM, name[len(AGENT_NAMESPACE_PREFIX) :])
            index = None if agent is None else agent.vectors
        else:
            namespace = self.namespaces.held(name)
            index = None if namespace is None else namespace.index
        waiter = getattr(index, "wait_indexed", None)
        if waiter is not None:
            waiter(timeout)

    # ------------------------------------------------------------------ storage
    def compact(self, namespace: Any = None, force: Any = False) -> dict[str, Any]:
        """Compact the store (one file holds every namespace, so ``namespace`` only checks
        that it exists)."""
        if not isinstance(force, bool):
            raise InvalidInput("'force' must be true or false")
        if namespace is not None:
            self._targets(namespace)
        job = self.jobs.run(
            "compaction",
            {"namespace": namespace, "force": force},
            lambda _context: self.store.compact(force=force),
            throttle=False,
        )
        report = dict(job.result)
        return {
            "job_id": job.id,
            "status": job.status,
            "message": f"store compacted: {report.get('bytes_before')} bytes before, "
            f"{report.get('bytes_after')} after"
            + (" (one store holds every namespace)" if namespace is not None else ""),
            "report": report,
        }
