"""The cluster routes' true answer for this server: one node, one shard, no replicas — and a
real maintenance mode.

The embedded server is a single process over one store, so the cluster, replication and shard
routes describe exactly that (one node that leads, replication factor 1, one shard holding
every namespace, nothing to rebalance) instead of a 404 or invented peers. Maintenance mode is
real: while it is on with ``reject_requests``, the request layer answers data-plane requests
with 503 ``SERVICE_UNAVAILABLE`` (health, admin and ops routes stay open); it is persisted in
``meta`` (``ops.maintenance``), so it survives a restart, and it ends by itself after
``duration_minutes`` when given.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import orjson

from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.ops.cluster_shared import SharedCluster
from dakera_server.errors import InvalidInput
from dakera_server.storage.base import Op, Store

__all__ = ["Cluster", "Maintenance"]

DOCUMENT = "ops.maintenance"
MAX_REASON_CHARS = 500


class Maintenance:
    """Maintenance mode: on/off, why, since when, until when, and whether it refuses traffic."""

    def __init__(self, store: Store, events: EventBus, clock: Callable[[], float]) -> None:
        self.store = store
        self.events = events
        self.clock = clock
        self.enabled = False
        self.reason: str | None = None
        self.since: int | None = None
        self.until: int | None = None
        self.reject_requests = False

    def load(self) -> None:
        """Read the persisted state (start-up)."""
        row = self.store.get_row("meta", DOCUMENT)
        if row is not None:
            state = orjson.loads(row.payload)
            self.enabled = bool(state.get("enabled"))
            self.reason = state.get("reason")
            self.since = state.get("since")
            self.until = state.get("until")
            self.reject_requests = bool(state.get("reject_requests"))

    def _save(self) -> None:
        state = {
            "enabled": self.enabled,
            "reason": self.reason,
            "since": self.since,
            "until": self.until,
            "reject_requests": self.reject_requests,
        }
        self.store.write([Op.put("meta", DOCUMENT, orjson.dumps(state))])

    def active(self) -> bool:
        """Whether maintenance is on now (an elapsed ``until`` turns it off)."""
        if self.enabled and self.until is not None and self.clock() >= self.until:
            self.enabled = False
        return self.enabled

    def refusing(self) -> bool:
        """Whether data-plane requests are refused now (checked on every request)."""
        return self.enabled and self.reject_requests and self.active()

    def status(self) -> dict[str, Any]:
        """``GET /v1/admin/cluster/maintenance``."""
        active = self.active()
        return {
            "enabled": active,
            "reason": self.reason if active else None,
            "since": self.since if active else None,
            "until": self.until if active else None,
            "reject_requests": self.reject_requests if active else False,
        }

    def enable(
        self,
        reason: Any,
        *,
        reject_requests: Any = False,
        duration_minutes: Any = None,
        node_ids: Any = None,
        node_id: str,
        all_nodes: list[str] | None = None,
    ) -> dict[str, Any]:
        """Turn maintenance on (persisted, audited)."""
        if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS):
            raise InvalidInput(f"'reason' must be a text of at most {MAX_REASON_CHARS} characters")
        if not isinstance(reject_requests, bool):
            raise InvalidInput("'reject_requests' must be true or false")
        if duration_minutes is not None and (
            isinstance(duration_minutes, bool)
            or not isinstance(duration_minutes, int)
            or not 1 <= duration_minutes <= 525_600
        ):
            raise InvalidInput("'duration_minutes' must be a whole number from 1 to 525600")
        nodes = all_nodes or [node_id]
        if node_ids is not None:
            if not isinstance(node_ids, list) or set(node_ids) != set(nodes):
                if len(nodes) == 1:
                    raise InvalidInput(f"this server has one node, '{node_id}'")
                raise InvalidInput(
                    "maintenance applies to every node sharing the store: "
                    f"{', '.join(sorted(nodes))} (leave 'node_ids' out)"
                )
        now = int(self.clock())
        self.enabled = True
        self.reason = reason
        self.since = now
        self.until = None if duration_minutes is None else now + 60 * duration_minutes
        self.reject_requests = reject_requests
        self._save()
        self.events.emit("maintenance_enabled", reason=reason, details=self.status())
        return {"success": True, **self.status(), "nodes": sorted(nodes)}

    def disable(self, force: Any = None) -> dict[str, Any]:
        """Turn maintenance off (persisted, audited)."""
        if force is not None and not isinstance(force, bool):
            raise InvalidInput("'force' must be true or false")
        was = self.active()
        self.enabled, self.reason, self.since, self.until = False, None, None, None
        self.reject_requests = False
        self._save()
        if was:
            self.events.emit("maintenance_disabled")
        return {"success": True, "was_enabled": was, **self.status()}


class Cluster:
    """This node, described as the one-node cluster it is; on a store shared by several nodes
    (``peers`` set by the engine), the nodes that heartbeat into it (``cluster_shared.py``)."""

    def __init__(self, version: str, started_at: float, clock: Callable[[], float]) -> None:
        self.version = version
        self.started_at = started_at
        self.clock = clock
        self.node_id = socket.gethostname() or "node-1"
        # Set by the engine on a shared store: every node's last heartbeat (storage
        # ``Store.nodes``), and why the store is not serving now (None: it is).
        self.peers: Callable[[], list[dict[str, Any]] | None] = lambda: None
        self.store_problem: Callable[[], str | None] = lambda: None

    def shared(self) -> SharedCluster | None:
        """The shared-store view, or None for the embedded one-node server."""
        if self.peers() is None and self.store_problem() is None:
            return None
        return SharedCluster(self)

    def member_ids(self) -> list[str]:
        """The nodes maintenance mode applies to: this one, or every live one sharing the
        store."""
        shared = self.shared()
        return [self.node_id] if shared is None else shared.live()

    def status(self, *, total_vectors: int, namespace_count: int) -> dict[str, Any]:
        """``GET /v1/admin/cluster/status``."""
        shared = self.shared()
        if shared is not None:
            return shared.status(total_vectors=total_vectors, namespace_count=namespace_count)
        return {
            "cluster_id": f"standalone-{self.node_id}",
            "mode": "standalone",
            "status": "healthy",
            "state": "healthy",
            "nodes": 1,
            "node_count": 1,
            "leader": self.node_id,
            "total_vectors": total_vectors,
            "namespace_count": namespace_count,
            "version": self.version,
            "timestamp": int(self.clock()),
        }

    def nodes(self, *, vector_count: int, memory_bytes: int) -> list[dict[str, Any]]:
        """``GET /v1/admin/cluster/nodes``: this node only (every node on a shared store)."""
        shared = self.shared()
        if shared is not None:
            return shared.nodes(vector_count=vector_count, memory_bytes=memory_bytes)
        now = int(self.clock())
        return [
            {
                "id": self.node_id,
                "node_id": self.node_id,
                "address": self.node_id,
                "role": "leader",
                "status": "healthy",
                "version": self.version,
                "uptime_seconds": int(now - self.started_at),
                "vector_count": vector_count,
                "memory_bytes": memory_bytes,
                "last_heartbeat": now,
            }
        ]

    def replication(self) -> dict[str, Any]:
        """``GET /v1/admin/cluster/replication``: no replicas (one node holds the data)."""
        shared = self.shared()
        if shared is not None:
            return shared.replication()
        return {
            "replication_factor": 1,
            "healthy_replicas": 1,
            "lag_ms": 0,
            "mode": "none",
            "message": "standalone server: the data lives in one store on this node",
        }

    def shards(self, *, namespaces: int, vectors: int) -> dict[str, Any]:
        """``GET /v1/admin/cluster/shards``: one shard holding every namespace."""
        shared = self.shared()
        if shared is not None:
            return shared.shards(namespaces=namespaces, vectors=vectors)
        return {
            "shards": [
                {
                    "shard_id": "0",
                    "node_id": self.node_id,
                    "status": "active",
                    "namespaces": namespaces,
                    "vector_count": vectors,
                }
            ],
            "total": 1,
        }

    def rebalance(self, dry_run: Any = False, shard_ids: Any = None) -> dict[str, Any]:
        """``POST /v1/admin/cluster/shards/rebalance``: nothing to move between one node."""
        if not isinstance(dry_run, bool):
            raise InvalidInput("'dry_run' must be true or false")
        if shard_ids is not None and (
            not isinstance(shard_ids, list) or any(s != "0" for s in shard_ids)
        ):
            raise InvalidInput("this server has one shard, '0'")
        return {
            "success": True,
            "dry_run": dry_run,
            "moves": [],
            "shards_moved": 0,
            "message": "one node holds the only shard: nothing to rebalance",
        }
