"""Index, cache, derived-data, re-embedding, storage-tier and memory-type administration
(dakera-api.md §5). Where a route describes something this server does not have (a query
cache, static embeddings awaiting an upgrade, storage tiers), it answers the true state in the
contract's shape; ``docs/operations.md`` explains each."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body

from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.scopes import Routes, Scope
from dakera_server.engine.vectors import scan as vector_scan
from dakera_server.errors import InvalidInput

routes = Routes()

AnyBody = Annotated[Any, Body()]
NO_CACHE = "this server holds every index in memory and keeps no query cache"


def _fields(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    return body


@routes.get("/v1/admin/indexes/stats", scope=Scope.ADMIN, unrestricted=True)
def index_stats(engine: EngineDep) -> dict[str, Any]:
    facts = engine.ops.inventory.all()
    namespaces = {f.name: f.index_wire() for f in facts}
    for name, entry in namespaces.items():
        entry["last_rebuild"] = engine.ops.upkeep.last_rebuild.get(name)
    return {
        "namespaces": namespaces,
        "total_indexed_vectors": sum(f.vectors - f.pending for f in facts),
        "total_pending_vectors": sum(f.pending for f in facts),
        "total_size_bytes": sum(f.index_bytes for f in facts),
    }


@routes.post("/v1/admin/indexes/rebuild", scope=Scope.ADMIN, unrestricted=True)
def rebuild_indexes(engine: EngineDep, body: AnyBody = None) -> dict[str, Any]:
    return engine.ops.upkeep.rebuild(_fields(body).get("namespace"))


@routes.post("/v1/admin/namespaces/{namespace}/optimize", scope=Scope.ADMIN, unrestricted=True)
def optimize_namespace(namespace: str, engine: EngineDep) -> dict[str, Any]:
    return engine.ops.upkeep.optimize(namespace)


@routes.post("/v1/admin/fulltext/reindex", scope=Scope.ADMIN, unrestricted=True)
def admin_fulltext_reindex(engine: EngineDep, body: AnyBody = None) -> dict[str, Any]:
    return engine.ops.upkeep.fulltext_reindex(_fields(body).get("namespace"))


# --------------------------------------------------------------------------- cache
def _cache_stats() -> dict[str, Any]:
    return {
        "enabled": False,
        "cache_type": "none",
        "entries": 0,
        "size_bytes": 0,
        "hits": 0,
        "misses": 0,
        "hit_rate": 0.0,
        "evictions": 0,
        "message": NO_CACHE,
    }


@routes.get("/v1/admin/cache/stats", scope=Scope.ADMIN, unrestricted=True)
def cache_stats() -> dict[str, Any]:
    return _cache_stats()


def _cleared(namespace: Any) -> dict[str, Any]:
    if namespace is not None and not isinstance(namespace, str):
        raise InvalidInput("'namespace' must be a string")
    return {
        "success": True,
        "namespace": namespace,
        "entries_cleared": 0,
        "message": f"nothing to clear: {NO_CACHE}",
    }


@routes.post("/v1/admin/cache/clear", scope=Scope.ADMIN, unrestricted=True)
def cache_clear(body: AnyBody = None) -> dict[str, Any]:
    return _cleared(_fields(body).get("namespace"))


@routes.post("/v1/admin/cache/clear/{namespace}", scope=Scope.ADMIN, unrestricted=True)
def cache_clear_namespace(namespace: str) -> dict[str, Any]:
    return _cleared(namespace)


@routes.post("/v1/admin/cache/warm", scope=Scope.ADMIN, unrestricted=True)
def cache_warm(engine: EngineDep, caller: CallerDep, body: AnyBody = None) -> dict[str, Any]:
    fields = _fields(body)
    named = fields.get("namespace")
    names = [named] if named is not None else list(engine.namespaces.names(caller))
    warmed = skipped = 0
    for name in names:
        if isinstance(name, str) and name.startswith("_dakera_agent_"):
            facts = engine.ops.inventory.facts(name)
            warmed += 0 if facts is None else facts.vectors
            continue
        outcome = vector_scan.warm(
            engine.namespaces,
            caller,
            name,
            priority=fields.get("priority"),
            target_tier=fields.get("target_tier"),
            max_vectors=fields.get("max_vectors"),
        )
        warmed += outcome.warmed
        skipped += outcome.skipped
    return {
        "success": True,
        "namespaces": len(names),
        "entries_warmed": warmed,
        "entries_skipped": skipped,
        "message": "every index is already held in memory; counted what is resident",
    }


@routes.post("/v1/namespaces/{namespace}/warm", scope=Scope.WRITE)
def warm_namespace(
    namespace: str, engine: EngineDep, caller: CallerDep, body: AnyBody = None
) -> dict[str, Any]:
    fields = _fields(body)
    outcome = vector_scan.warm(
        engine.namespaces,
        caller,
        namespace,
        vector_ids=fields.get("vector_ids"),
        priority=fields.get("priority"),
        target_tier=fields.get("target_tier"),
        access_pattern=fields.get("access_pattern"),
        max_vectors=fields.get("max_vectors"),
    )
    return outcome.to_wire()


# ------------------------------------------------------------------ derived data
@routes.get("/v1/admin/derivations/status", scope=Scope.ADMIN, unrestricted=True)
def derivations_status(engine: EngineDep) -> dict[str, Any]:
    return engine.ops.upkeep.derivations()


@routes.post("/v1/admin/derivations/drain", scope=Scope.ADMIN, unrestricted=True)
def drain_derivations(engine: EngineDep, body: AnyBody = None) -> dict[str, Any]:
    return engine.ops.upkeep.drain(_fields(body).get("timeout_secs"))


# The server embeds every text with its one model when it is written: there is no "static"
# embedding tier whose vectors wait for an upgrade, so these answer zero pending, truthfully.
@routes.get("/v1/admin/reembed/static-count", scope=Scope.ADMIN, unrestricted=True)
def admin_reembed_static_count(engine: EngineDep) -> dict[str, Any]:
    return {"static_count": 0, "model": engine.embedder.model_name}


@routes.post("/v1/admin/reembed/drain", scope=Scope.ADMIN, unrestricted=True)
def drain_reembed(engine: EngineDep, body: AnyBody = None) -> dict[str, Any]:
    _fields(body)
    return {
        "processed": 0,
        "remaining": 0,
        "elapsed_ms": 0,
        "cycles": 0,
        "timed_out": False,
        "message": f"every vector is embedded with {engine.embedder.model_name} when written",
    }


@routes.get("/v1/admin/reembed/migration", scope=Scope.ADMIN, unrestricted=True)
def reembed_migration(engine: EngineDep) -> dict[str, Any]:
    return {
        "status": "idle",
        "in_progress": False,
        "pending": 0,
        "migrated": 0,
        "model": engine.embedder.model_name,
        "dimension": engine.embedder.dimension,
    }


@routes.post("/v1/admin/namespaces/migrate-dimensions", scope=Scope.ADMIN, unrestricted=True)
def migrate_namespace_dimensions(
    engine: EngineDep, caller: CallerDep, body: AnyBody = None
) -> dict[str, Any]:
    fields = _fields(body)
    target = fields.get("target_dimension", 1024)
    if isinstance(target, bool) or not isinstance(target, int) or not 1 <= target <= 65536:
        raise InvalidInput("'target_dimension' must be a whole number from 1 to 65536")
    wanted = fields.get("namespaces")
    if wanted is not None and (
        not isinstance(wanted, list) or not all(isinstance(n, str) for n in wanted)
    ):
        raise InvalidInput("'namespaces' must be a list of namespace names")
    results = []
    for facts in engine.ops.inventory.all():
        if facts.kind != "data" or (wanted is not None and facts.name not in wanted):
            continue
        current = facts.dimension == target or facts.dimension is None
        results.append(
            {
                "namespace": facts.name,
                "original_dimension": facts.dimension or 0,
                "vectors_migrated": 0,
                "vectors_skipped": 0 if current else facts.vectors,
                "status": "already_current" if current else "failed",
                "error": None
                if current
                else "raw vectors cannot be converted to another dimension; re-upsert them "
                "into a namespace of the target dimension",
            }
        )
    return {
        "migrated": 0,
        "failed": sum(1 for r in results if r["status"] == "failed"),
        "already_current": sum(1 for r in results if r["status"] == "already_current"),
        "results": results,
    }


# ----------------------------------------------------------------- storage, types
@routes.get("/v1/admin/storage/tiers", scope=Scope.ADMIN, unrestricted=True)
def storage_tier_overview(engine: EngineDep) -> dict[str, Any]:
    facts = engine.ops.inventory.all()
    disk = engine.store.disk_usage() or {}
    return {
        "tiers_enabled": False,
        "architecture": [
            {
                "name": "memory",
                "tier_type": "hot",
                "technology": "in-process indexes (exact numpy / hnswlib, tantivy) over SQLite",
                "description": "the only tier: every record is held in memory and persisted "
                "in the store",
                "target_latency": "<10ms",
                "capacity": None,
                "status": "active",
                "current_count": sum(f.records for f in facts),
                "hit_count": 0,
                "hit_rate": 1.0,
            }
        ],
        "config": {
            "hot_tier_capacity": 0,
            "hot_to_warm_threshold_secs": 0,
            "warm_to_cold_threshold_secs": 0,
            "auto_tier_enabled": False,
            "tier_check_interval_secs": 0,
        },
        "activity": {
            "promotions": 0,
            "demotions": 0,
            "cache_hit_rate": 0.0,
            "storage_backend": type(engine.store).__name__,
            "promotions_to_hot": 0,
            "demotions_to_warm": 0,
            "demotions_to_cold": 0,
        },
        "store_bytes": disk.get("total"),
    }


@routes.get("/v1/admin/memory-type-stats", scope=Scope.ADMIN, unrestricted=True)
def memory_type_stats(engine: EngineDep) -> dict[str, Any]:
    return engine.ops.inventory.memory_types()


@routes.get("/v1/admin/background-activity", scope=Scope.ADMIN, unrestricted=True)
def background_activity(engine: EngineDep) -> dict[str, Any]:
    jobs = engine.lifecycle.jobs.list()
    running = [j.to_wire() for j in jobs if j.status in ("queued", "running")]
    derivations = engine.ops.upkeep.derivations()
    return {
        "tasks": running,
        "running": len(running),
        "recent_jobs": [j.to_wire() for j in jobs[:20]],
        "autopilot": engine.lifecycle.autopilot.status(),
        "derivations": {
            "settled": derivations["settled"],
            "graph_owed": derivations["graph_owed"],
            "index_owed": derivations["index_owed"],
        },
        "metrics": {
            "snapshots": engine.ops.history.count(),
            "last_snapshot_at": engine.ops.history.last_snapshot_at,
            "interval_secs": engine.ops.history.interval,
        },
    }
