"""Memory routes: store, recall, get, update, forget, search, importance, and their batches."""

from __future__ import annotations

from typing import Any

from fastapi import Query

from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.memories.models import (
    BatchForgetRequest,
    BatchRecallRequest,
    BatchStoreRequest,
    ForgetRequest,
    ImportanceRequest,
    RecallRequest,
    StoreMemoryRequest,
    UpdateMemoryRequest,
    unknown_field_warnings,
)
from dakera_server.api.scopes import Routes, Scope
from dakera_server.engine.memory.listing import BatchPredicate, batch_forget, batch_recall
from dakera_server.engine.memory.recall import RecallFilters, recall
from dakera_server.engine.memory.writes import NewMemory
from dakera_server.errors import InvalidInput

routes = Routes()
REPORT = {"applied": False, "candidates": 0, "skipped": "no reranker configured", "capped": False}


def _new_memory(agent_id: str, item: Any) -> NewMemory:
    metadata = item.metadata
    if getattr(item, "valid_from", None) is not None:
        metadata = {**(metadata or {}), "valid_from": item.valid_from}
    return NewMemory(
        agent_id=agent_id,
        content=item.content,
        memory_type=item.memory_type,
        importance=item.importance,
        tags=item.tags,
        metadata=metadata,
        session_id=item.session_id,
        ttl_seconds=item.ttl_seconds,
        expires_at=item.expires_at,
        event_time=item.event_time,
        id=item.id,
        attachment_ref=item.attachment_ref,
    )


@routes.post("/v1/memory/store", scope=Scope.WRITE)
def store_memory(body: StoreMemoryRequest, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    session, session_ops = engine.sessions.activity_op(body.session_id, body.agent_id)
    outcome = engine.memories.store(caller, [_new_memory(body.agent_id, body)], session_ops)
    answer: dict[str, Any] = {
        "memory": outcome.memories[0].to_wire(),
        "embedding_time_ms": round(outcome.embedding_ms, 3),
    }
    if session is not None:
        answer["session_state"] = "active" if session.active else "ended"
    if outcome.truncations:
        answer.update(outcome.truncations[0].to_wire())
    if warnings := unknown_field_warnings(body):
        answer["warnings"] = warnings
    return answer


@routes.post("/v1/memories/store/batch", scope=Scope.WRITE)
def store_memories_batch(
    body: BatchStoreRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    if not 1 <= len(body.memories) <= 1000:
        raise InvalidInput("'memories' must hold between 1 and 1000 items")
    items = [_new_memory(body.agent_id, item) for item in body.memories]
    outcome = engine.memories.store(caller, items)
    warnings = unknown_field_warnings(body)
    extra: dict[str, int] = {}
    for item in body.memories:
        for name in item.model_extra or {}:
            extra[name] = extra.get(name, 0) + 1
    warnings += [
        f"unknown field 'memories[].{name}' ignored (in {count} items)"
        for name, count in extra.items()
    ]
    return {
        "stored": [m.to_wire() for m in outcome.memories],
        "stored_count": len(outcome.memories),
        "total_embedding_time_ms": round(outcome.embedding_ms, 3),
        "ended_sessions": [],
        "truncated": [
            {k: v for k, v in {"id": t.memory_id, **t.to_wire()}.items() if k != "truncated"}
            for t in outcome.truncations
        ],
        "warnings": warnings,
    }


def _recall_answer(body: RecallRequest, engine: EngineDep, caller: CallerDep, top_k: int) -> Any:
    filters = RecallFilters.parse(
        memory_type=body.memory_type,
        min_importance=body.min_importance,
        tags=body.tags,
        session_id=body.session_id,
        since=body.since,
        until=body.until,
    )
    if body.rerank_candidates is not None and body.rerank_candidates < 1:
        raise InvalidInput("'rerank_candidates' must be at least 1")
    return recall(
        engine.memories,
        caller,
        body.agent_id,
        body.query,
        top_k=top_k,
        filters=filters,
        routing=body.routing,
        fusion=body.fusion,
        vector_weight=body.vector_weight,
    )


@routes.post("/v1/memory/recall", scope=Scope.READ)
def recall_memories(body: RecallRequest, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    outcome = _recall_answer(body, engine, caller, 5 if body.top_k is None else body.top_k)
    return {
        "memories": [r.to_wire() for r in outcome.results],
        "total_found": len(outcome.results),
        "query_embedding_time_ms": round(outcome.embedding_ms, 3),
        "search_time_ms": round(outcome.search_ms, 3),
        "rerank_report": REPORT,
        "rerank": REPORT,
        "late_interaction_first_stage": None,
        "warnings": unknown_field_warnings(body),
    }


@routes.post("/v1/memory/search", scope=Scope.READ)
def search_memories(body: RecallRequest, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    top_k = 10 if body.top_k is None else body.top_k
    outcome = _recall_answer(body, engine, caller, top_k)
    return {
        "memories": [r.to_wire() for r in outcome.results],
        "total_count": len(outcome.results),
        "effective_top_k": top_k,
        "rerank_report": REPORT,
    }


@routes.post("/v1/memories/recall/batch", scope=Scope.READ)
def batch_recall_memories(
    body: BatchRecallRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    predicate = BatchPredicate.parse(
        None if body.filter is None else body.filter.model_dump(exclude_none=True)
    )
    limit = 100 if body.limit is None else body.limit
    outcome = batch_recall(engine.memories, caller, body.agent_id, predicate, limit)
    warnings = unknown_field_warnings(body)
    if body.filter is not None:
        warnings += unknown_field_warnings(body.filter, "filter.")
    return {
        "memories": [m.to_wire() for m in outcome.memories],
        "total": outcome.total,
        "filtered": outcome.filtered,
        "truncated": outcome.truncated,
        "warnings": warnings,
    }


@routes.delete("/v1/memories/forget/batch", scope=Scope.WRITE)
def batch_forget_memories(
    body: BatchForgetRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    predicate = BatchPredicate.parse(
        None if body.filter is None else body.filter.model_dump(exclude_none=True)
    )
    return {"deleted_count": batch_forget(engine.memories, caller, body.agent_id, predicate)}


@routes.get("/v1/memory/get/{memory_id}", scope=Scope.READ)
def get_memory(
    memory_id: str, engine: EngineDep, caller: CallerDep, agent_id: str | None = None
) -> dict[str, Any]:
    return engine.memories.get(caller, memory_id, agent_id).to_wire()


@routes.put("/v1/memory/update/{memory_id}", scope=Scope.WRITE)
def update_memory(
    memory_id: str,
    body: UpdateMemoryRequest,
    engine: EngineDep,
    caller: CallerDep,
    agent_id: str | None = Query(default=None),
) -> dict[str, Any]:
    if agent_id is None:
        raise InvalidInput("the 'agent_id' query parameter is required")
    memory, truncation = engine.memories.update(
        caller, agent_id, memory_id, body.model_dump(exclude_none=True)
    )
    answer = memory.to_wire()
    if truncation is not None:
        answer.update(truncation.to_wire())
    return answer


@routes.post("/v1/memory/forget", scope=Scope.WRITE)
def forget(body: ForgetRequest, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    ids = list(body.memory_ids or []) + ([body.memory_id] if body.memory_id else [])
    if not ids:
        raise InvalidInput("'memory_ids' must name at least one memory")
    return {"deleted_count": len(engine.memories.forget(caller, body.agent_id, ids))}


@routes.post("/v1/memory/importance", scope=Scope.WRITE)
def update_importance(
    body: ImportanceRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    ids = list(body.memory_ids or []) + ([body.memory_id] if body.memory_id else [])
    if not ids:
        raise InvalidInput("give 'memory_id' or 'memory_ids'")
    updated = engine.memories.set_importance(caller, body.agent_id, ids, body.importance)
    answer: dict[str, Any] = {"importance": body.importance, "updated": len(updated)}
    if len(ids) == 1:
        answer["memory_id"] = ids[0]
    else:
        answer["memory_ids"] = ids
    return answer
