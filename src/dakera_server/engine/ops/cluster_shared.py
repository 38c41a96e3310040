"""The cluster routes on a store shared by several nodes: what is true of this design.

Every node is a cache of one PostgreSQL database and equal to the others: there is no leader,
no shard placement and no replication of our own (copies of the data are PostgreSQL's, set up
and watched there). The nodes are those that heartbeat into the database (``Store.heartbeat``,
every ``HEARTBEAT_SECONDS`` from the follower's thread); one silent for ``SILENT_AFTER``
seconds is reported silent, and one silent for ``GONE_AFTER`` is no longer listed. Status is
``degraded`` with reasons when PostgreSQL is unreachable from this node or a node is silent
(the route adds Redis).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from dakera_server.errors import DakeraError


class Cluster(Protocol):
    """What this view reads of ``cluster.Cluster`` (no import: cluster.py imports us)."""

    node_id: str
    version: str
    started_at: float
    clock: Callable[[], float]
    peers: Callable[[], list[dict[str, Any]] | None]
    store_problem: Callable[[], str | None]


__all__ = ["GONE_AFTER", "SILENT_AFTER", "SharedCluster"]

SILENT_AFTER = 15.0
GONE_AFTER = 3600.0


class SharedCluster:
    """One answer of the cluster routes, from the heartbeat rows read once."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.problem = cluster.store_problem()
        self.rows: list[dict[str, Any]] = []
        if self.problem is None:
            try:
                self.rows = [
                    r for r in cluster.peers() or [] if float(r["age_seconds"]) < GONE_AFTER
                ]
            except DakeraError as exc:
                self.problem = f"PostgreSQL unreachable: {exc.message}"

    def live(self) -> list[str]:
        """Node ids heard from within ``SILENT_AFTER`` (this node always counts)."""
        ids = {str(r["node_id"]) for r in self.rows if float(r["age_seconds"]) < SILENT_AFTER}
        return sorted(ids | {self.cluster.node_id})

    def silent(self) -> list[str]:
        return sorted(
            str(r["node_id"])
            for r in self.rows
            if float(r["age_seconds"]) >= SILENT_AFTER and r["node_id"] != self.cluster.node_id
        )

    def reasons(self) -> list[str]:
        reasons = [] if self.problem is None else [self.problem]
        reasons += [
            f"node {node} silent for {SILENT_AFTER:.0f} s or more" for node in self.silent()
        ]
        return reasons

    def status(self, *, total_vectors: int, namespace_count: int) -> dict[str, Any]:
        reasons = self.reasons()
        state = "degraded" if reasons else "healthy"
        live = self.live()
        return {
            "cluster_id": "shared-store",
            "mode": "shared-store",
            "status": state,
            "state": state,
            "reasons": reasons,
            "nodes": len(live),
            "node_count": len(live),
            "silent_nodes": self.silent(),
            "leader": None,
            "answered_by": self.cluster.node_id,
            "total_vectors": total_vectors,
            "namespace_count": namespace_count,
            "version": self.cluster.version,
            "timestamp": int(self.cluster.clock()),
        }

    def nodes(self, *, vector_count: int, memory_bytes: int) -> list[dict[str, Any]]:
        now = int(self.cluster.clock())
        by_id = {str(r["node_id"]): r for r in self.rows}
        listed = []
        for node_id in sorted(set(by_id) | {self.cluster.node_id}):
            row = by_id.get(node_id, {})
            mine = node_id == self.cluster.node_id
            age = 0.0 if mine else float(row.get("age_seconds", GONE_AFTER))
            listed.append(
                {
                    "id": node_id,
                    "node_id": node_id,
                    "address": row.get("address", node_id),
                    "role": "node",  # all equal: no leader in this design
                    "status": "healthy" if age < SILENT_AFTER else "silent",
                    "version": row.get("version", self.cluster.version),
                    "uptime_seconds": int(
                        now - (self.cluster.started_at if mine else row.get("started_at", now))
                    ),
                    "vector_count": vector_count if mine else row.get("vector_count", 0),
                    "memory_bytes": memory_bytes if mine else row.get("memory_bytes", 0),
                    "last_heartbeat": int(now - age),
                    "this_node": mine,
                }
            )
        return listed

    def replication(self) -> dict[str, Any]:
        return {
            "replication_factor": 1,
            "healthy_replicas": 0 if self.problem else 1,
            "lag_ms": 0,
            "mode": "shared-store",
            "cache_nodes": len(self.live()),
            "message": (
                "every node is a cache of one PostgreSQL database and catches up with it before "
                "answering a read; copies of the data are PostgreSQL's own replication, "
                "configured and watched in PostgreSQL"
            ),
        }

    def shards(self, *, namespaces: int, vectors: int) -> dict[str, Any]:
        return {
            "shards": [
                {
                    "shard_id": "0",
                    "node_id": self.cluster.node_id,
                    "nodes": self.live(),
                    "status": "active" if self.problem is None else "unreachable",
                    "namespaces": namespaces,
                    "vector_count": vectors,
                }
            ],
            "total": 1,
        }
