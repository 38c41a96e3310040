"""Session routes (dakera-api.md §3.9): start/end/touch wrap the session, get/list are flat."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.scopes import Routes, Scope
from dakera_server.engine.access import Caller
from dakera_server.engine.core import Engine
from dakera_server.engine.memory.models import Session
from dakera_server.errors import InvalidInput

routes = Routes()


class StartSessionRequest(BaseModel):
    agent_id: str
    metadata: dict[str, Any] | None = None
    idle_timeout_secs: int | None = None
    session_id: str | None = None


class EndSessionRequest(BaseModel):
    summary: str | None = None
    auto_summarize: bool | None = None


def _wire(engine: Engine, caller: Caller, session: Session) -> dict[str, Any]:
    return session.to_wire(engine.sessions.memory_count(caller, session))


@routes.post("/v1/sessions/start", scope=Scope.WRITE)
def start_session(
    body: StartSessionRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    session = engine.sessions.start(
        caller, body.agent_id, body.metadata, body.idle_timeout_secs, body.session_id
    )
    return {"session": _wire(engine, caller, session)}


@routes.post("/v1/sessions/{session_id}/end", scope=Scope.WRITE)
def end_session(
    session_id: str, engine: EngineDep, caller: CallerDep, body: EndSessionRequest | None = None
) -> dict[str, Any]:
    session = engine.sessions.end(caller, session_id, None if body is None else body.summary)
    wire = _wire(engine, caller, session)
    return {"session": wire, "memory_count": wire["memory_count"]}


@routes.post("/v1/sessions/{session_id}/touch", scope=Scope.WRITE)
def touch_session(session_id: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    session = engine.sessions.touch(caller, session_id)
    return {
        "session": _wire(engine, caller, session),
        "session_state": "active" if session.active else "ended",
        "idle_deadline_at": session.idle_deadline(),
    }


@routes.get("/v1/sessions/{session_id}", scope=Scope.READ)
def get_session(session_id: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    return _wire(engine, caller, engine.sessions.get(caller, session_id))


@routes.get("/v1/sessions", scope=Scope.READ)
def list_sessions(
    engine: EngineDep,
    caller: CallerDep,
    agent_id: str | None = None,
    active_only: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    if limit < 1 or offset < 0:
        raise InvalidInput("'limit' must be positive and 'offset' not negative")
    found = engine.sessions.list_for(caller, agent_id, active_only)
    page = found[offset : offset + limit]
    return {"sessions": [_wire(engine, caller, s) for s in page], "total": len(found)}


@routes.get("/v1/sessions/{session_id}/memories", scope=Scope.READ)
def session_memories(
    session_id: str,
    engine: EngineDep,
    caller: CallerDep,
    limit: int = 50,
    offset: int = 0,
    content_preview_chars: int | None = None,
) -> dict[str, Any]:
    if not 1 <= limit <= 500 or offset < 0:
        raise InvalidInput("'limit' must be between 1 and 500 and 'offset' not negative")
    session = engine.sessions.get(caller, session_id)
    memories = engine.sessions.memories_of(caller, session)
    page = [preview(m.to_wire(), content_preview_chars) for m in memories[offset : offset + limit]]
    return {
        "session": session.to_wire(len(memories)),
        "memories": page,
        "total": len(memories),
        "total_found": len(memories),
    }


def preview(wire: dict[str, Any], chars: int | None) -> dict[str, Any]:
    """Cut ``content`` to ``chars`` characters, adding ``content_len``/``content_truncated``."""
    if chars is None:
        return wire
    if not 1 <= chars <= 10_000:
        raise InvalidInput("'content_preview_chars' must be between 1 and 10000")
    content = wire["content"]
    wire["content_len"] = len(content)
    wire["content_truncated"] = len(content) > chars
    wire["content"] = content[:chars]
    return wire
