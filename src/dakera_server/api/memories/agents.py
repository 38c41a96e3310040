"""Agent routes (dakera-api.md §3.10): listing, creation, memories, stats, sessions, wake-up."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.responses import Response

from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.memories.sessions import preview
from dakera_server.api.scopes import Routes, Scope
from dakera_server.engine.access import agent_namespace
from dakera_server.engine.memory.listing import agent_stats, newest_first, wake_up
from dakera_server.engine.rules import check_agent_id
from dakera_server.errors import InvalidInput, NamespaceAccessDenied

routes = Routes()


class CreateAgentRequest(BaseModel):
    agent_id: str


@routes.get("/v1/agents", scope=Scope.READ)
def list_agents(engine: EngineDep, caller: CallerDep) -> list[dict[str, Any]]:
    answer = []
    agent_ids = set(engine.memories.agent_ids(caller))
    sessions = engine.sessions.list_for(caller)
    agent_ids.update(s.agent_id for s in sessions)
    for agent_id in sorted(agent_ids):
        agent = engine.memories.agent(caller, agent_id)
        own = [s for s in sessions if s.agent_id == agent_id]
        count = 0 if agent is None else len(engine.memories.live(agent))
        answer.append(
            {
                "agent_id": agent_id,
                "memory_count": count,
                "session_count": len(own),
                "active_sessions": sum(1 for s in own if s.active),
                "vector_count": count,
            }
        )
    return answer


@routes.post("/v1/agents", scope=Scope.WRITE)
def create_agent(
    body: CreateAgentRequest, engine: EngineDep, caller: CallerDep, response: Response
) -> dict[str, Any]:
    agent_id = check_agent_id(body.agent_id)
    if not caller.can_see_agent(agent_id):
        raise NamespaceAccessDenied(f"this key may not create agent '{agent_id}'")
    created = engine.memories.ensure_agent(agent_id)
    response.status_code = 201 if created else 200
    return {
        "agent_id": agent_id,
        "namespace": agent_namespace(agent_id),
        "created": created,
        "dimension": engine.embedder.dimension,
        "model": engine.embedder.model_name,
    }


@routes.get("/v1/agents/{agent_id}/memories", scope=Scope.READ)
def agent_memories(
    agent_id: str,
    engine: EngineDep,
    caller: CallerDep,
    memory_type: str | None = None,
    limit: int = 50,
    offset: int = 0,
    include_derived: bool = False,
    content_preview_chars: int | None = None,
) -> list[dict[str, Any]]:
    if not 1 <= limit <= 1000 or offset < 0:
        raise InvalidInput("'limit' must be between 1 and 1000 and 'offset' not negative")
    agent = engine.memories.agent(caller, agent_id)
    memories = [] if agent is None else newest_first(engine.memories.live(agent))
    if memory_type is not None:
        memories = [m for m in memories if m.memory_type == memory_type.lower()]
    return [preview(m.to_wire(), content_preview_chars) for m in memories[offset : offset + limit]]


@routes.get("/v1/agents/{agent_id}/stats", scope=Scope.READ)
def get_agent_stats(agent_id: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    sessions = engine.sessions.list_for(caller, agent_id)
    return {
        "agent_id": agent_id,
        **agent_stats(engine.memories, caller, agent_id),
        "total_sessions": len(sessions),
        "active_sessions": sum(1 for s in sessions if s.active),
    }


@routes.get("/v1/agents/{agent_id}/sessions", scope=Scope.READ)
def agent_sessions(
    agent_id: str,
    engine: EngineDep,
    caller: CallerDep,
    active_only: bool = False,
    limit: int = 100,
) -> list[dict[str, Any]]:
    found = engine.sessions.list_for(caller, agent_id, active_only)[: max(limit, 0)]
    return [s.to_wire(engine.sessions.memory_count(caller, s)) for s in found]


@routes.get("/v1/agents/{agent_id}/wake-up", scope=Scope.READ)
def agent_wake_up(
    agent_id: str,
    engine: EngineDep,
    caller: CallerDep,
    top_n: int = 20,
    min_importance: float = 0.0,
    include_derived: bool = False,
) -> dict[str, Any]:
    memories, available = wake_up(engine.memories, caller, agent_id, top_n, min_importance)
    return {
        "agent_id": agent_id,
        "memories": [m.to_wire() for m in memories],
        "total_available": available,
    }
