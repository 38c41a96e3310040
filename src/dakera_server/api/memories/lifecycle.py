"""Lifecycle routes: AutoPilot, decay, TTL, jobs (admin), consolidation and deduplication.

Shapes: dakera-api.md §3.7 (consolidate, deduplicated list/restore), §3.13, §4.2-4.4, §4.11
(jobs). Cross-namespace admin routes need an unrestricted admin key (§9: "global admin").
Feedback and importance routes are in ``api/memories/feedback.py``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.memories.lifecycle_models import (
    AutoPilotConfigRequest,
    ConsolidateRequest,
    ConsolidationConfigRequest,
    DecayConfigRequest,
    DeduplicateRequest,
    TriggerRequest,
    TtlCleanupRequest,
)
from dakera_server.api.scopes import Routes, Scope

routes = Routes()


# ------------------------------------------------------------------- AutoPilot
@routes.get("/v1/admin/autopilot/status", scope=Scope.ADMIN, unrestricted=True)
def autopilot_status(engine: EngineDep) -> dict[str, Any]:
    return engine.lifecycle.autopilot.status()


@routes.put("/v1/admin/autopilot/config", scope=Scope.ADMIN, unrestricted=True)
def autopilot_update_config(body: AutoPilotConfigRequest, engine: EngineDep) -> dict[str, Any]:
    config = engine.lifecycle.autopilot.update_config(body.model_dump(exclude_none=True))
    return {
        "success": True,
        "config": asdict(config),
        "message": "AutoPilot configuration updated; it applies from the next cycle",
    }


@routes.post("/v1/admin/autopilot/trigger", scope=Scope.ADMIN, unrestricted=True)
def autopilot_trigger(body: TriggerRequest, engine: EngineDep) -> dict[str, Any]:
    return engine.lifecycle.trigger(body.action)


# ----------------------------------------------------------------------- decay
@routes.get("/v1/admin/decay/config", scope=Scope.ADMIN, unrestricted=True)
def decay_config(engine: EngineDep) -> dict[str, Any]:
    return engine.lifecycle.decay.config.to_wire()


@routes.put("/v1/admin/decay/config", scope=Scope.ADMIN, unrestricted=True)
def decay_update_config(body: DecayConfigRequest, engine: EngineDep) -> dict[str, Any]:
    config = engine.lifecycle.decay.update_config(body.model_dump(exclude_none=True))
    return {
        "success": True,
        "config": config.to_wire(),
        "message": "decay configuration updated; ranking uses it now, the next cycle persists it",
    }


@routes.get("/v1/admin/decay/stats", scope=Scope.ADMIN, unrestricted=True)
def decay_stats(engine: EngineDep) -> dict[str, Any]:
    return engine.lifecycle.decay.stats()


# ------------------------------------------------------------------------- TTL
@routes.get("/v1/admin/ttl/stats", scope=Scope.ADMIN, unrestricted=True)
def ttl_stats(engine: EngineDep) -> dict[str, Any]:
    return engine.lifecycle.ttl.stats()


@routes.post("/v1/admin/ttl/cleanup", scope=Scope.ADMIN, unrestricted=True)
def ttl_cleanup(engine: EngineDep, body: TtlCleanupRequest | None = None) -> dict[str, Any]:
    return engine.lifecycle.ttl_cleanup(None if body is None else body.namespace)


# ------------------------------------------------------------------------ jobs
@routes.get("/ops/jobs", scope=Scope.ADMIN, unrestricted=True)
def ops_list_jobs(engine: EngineDep) -> list[dict[str, Any]]:
    return [job.to_wire() for job in engine.lifecycle.jobs.list()]


@routes.get("/ops/jobs/{job_id}", scope=Scope.ADMIN, unrestricted=True)
def ops_get_job(job_id: str, engine: EngineDep) -> dict[str, Any]:
    return engine.lifecycle.jobs.get(job_id).to_wire()


# -------------------------------------------------------- consolidation / dedup
@routes.post("/v1/memory/consolidate", scope=Scope.WRITE)
def consolidate(body: ConsolidateRequest, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    outcome = engine.lifecycle.consolidator.consolidate(
        caller, body.agent_id, body.memory_ids, body.threshold, body.target_type
    )
    return outcome.to_wire()


@routes.get("/v1/memory/deduplicated", scope=Scope.READ)
def list_deduplicated(agent_id: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    entries = engine.lifecycle.trash.list(caller, agent_id)
    return {"agent_id": agent_id, "memories": [e.to_wire() for e in entries], "count": len(entries)}


@routes.post("/v1/memory/deduplicated/{memory_id}/restore", scope=Scope.WRITE)
def restore_deduplicated(
    memory_id: str, agent_id: str, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    return engine.lifecycle.trash.restore(caller, agent_id, memory_id).to_wire()


@routes.post("/v1/knowledge/deduplicate", scope=Scope.WRITE)
def deduplicate(body: DeduplicateRequest, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    return engine.lifecycle.deduplicate(
        caller,
        body.agent_id,
        threshold=body.threshold,
        memory_type=body.memory_type,
        dry_run=body.dry_run,
    )


@routes.post("/v1/agents/{agent_id}/consolidate", scope=Scope.WRITE)
def consolidate_agent(agent_id: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    return engine.lifecycle.consolidate_agent(caller, agent_id)


@routes.post("/v1/agents/{agent_id}/compress", scope=Scope.WRITE)
def compress_agent(agent_id: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    return engine.lifecycle.compress(caller, agent_id)


@routes.get("/v1/agents/{agent_id}/consolidation/log", scope=Scope.READ)
def get_consolidation_log(
    agent_id: str, engine: EngineDep, caller: CallerDep
) -> list[dict[str, Any]]:
    return engine.lifecycle.consolidator.log(caller, agent_id)


@routes.patch("/v1/agents/{agent_id}/consolidation/config", scope=Scope.WRITE)
def patch_consolidation_config(
    agent_id: str, body: ConsolidationConfigRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    changes = body.model_dump(exclude_none=True)
    config = engine.lifecycle.consolidator.patch_config(caller, agent_id, changes)
    return {"agent_id": agent_id, **asdict(config)}
