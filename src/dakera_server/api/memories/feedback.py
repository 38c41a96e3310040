"""Feedback and importance routes (dakera-api.md §4.1).

Answers carry ``signal`` as ``upvote``/``downvote``/``flag`` only: the SDK parses it as a strict
enum, so the aliases ``positive``/``negative`` are answered under their canonical names.
"""

from __future__ import annotations

from typing import Any

from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.memories.lifecycle_models import (
    FeedbackRequest,
    MemoryFeedbackRequest,
    PatchImportanceRequest,
)
from dakera_server.api.scopes import Routes, Scope
from dakera_server.engine.lifecycle.feedback import canonical_signal
from dakera_server.engine.memory.models import Memory

routes = Routes()


def _answer(memory: Memory, signal: str) -> dict[str, Any]:
    return {"memory_id": memory.id, "new_importance": memory.importance, "signal": signal}


@routes.post("/v1/memory/feedback", scope=Scope.WRITE)
def memory_feedback(body: FeedbackRequest, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    signal = canonical_signal(body.signal if body.signal is not None else body.feedback)
    memory = engine.lifecycle.feedback.submit(caller, body.agent_id, body.memory_id, signal)
    return _answer(memory, signal)


@routes.post("/v1/memories/{memory_id}/feedback", scope=Scope.WRITE)
def feedback_memory(
    memory_id: str, body: MemoryFeedbackRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    signal = canonical_signal(body.signal)
    memory = engine.lifecycle.feedback.submit(caller, body.agent_id, memory_id, signal)
    return _answer(memory, signal)


@routes.get("/v1/memories/{memory_id}/feedback", scope=Scope.READ)
def get_memory_feedback_history(
    memory_id: str, engine: EngineDep, caller: CallerDep, agent_id: str | None = None
) -> dict[str, Any]:
    entries = engine.lifecycle.feedback.history(caller, agent_id, memory_id)
    return {"memory_id": memory_id, "entries": entries}


@routes.patch("/v1/memories/{memory_id}/importance", scope=Scope.WRITE)
def patch_memory_importance(
    memory_id: str, body: PatchImportanceRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    memory = engine.lifecycle.feedback.patch_importance(
        caller, body.agent_id, memory_id, body.importance
    )
    return memory.to_wire()


@routes.get("/v1/agents/{agent_id}/feedback/summary", scope=Scope.READ)
def get_agent_feedback_summary(
    agent_id: str, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    return engine.lifecycle.feedback.summary(caller, agent_id)


@routes.get("/v1/feedback/health", scope=Scope.READ)
def get_feedback_health(
    engine: EngineDep, caller: CallerDep, agent_id: str | None = None
) -> dict[str, Any]:
    return engine.lifecycle.feedback.health(caller, agent_id)
