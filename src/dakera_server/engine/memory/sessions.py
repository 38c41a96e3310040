"""Sessions: start, end, touch, and the activity that keeps them open.

Sessions are authorised through their agent's namespace. A session id may be used by a store
without having been started (``urn:chat:42``); then it is only a label on the memory.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import Any

from dakera_server.engine.access import Caller
from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.models import Memory, Session
from dakera_server.engine.memory.writes import NewMemory
from dakera_server.engine.rules import check_agent_id, check_metadata, check_session_id
from dakera_server.errors import InvalidInput, NamespaceAccessDenied, SessionNotFound
from dakera_server.storage.base import Op

__all__ = ["SessionEngine"]

MAX_IDLE_TIMEOUT = 2_592_000
MAX_LINKED_IDS = 1000


class SessionEngine:
    """All sessions, kept in memory and persisted on every change."""

    def __init__(
        self,
        memories: MemoryEngine,
        *,
        idle_timeout_secs: int,
        events: EventBus | None = None,
    ) -> None:
        self.memories = memories
        self.idle_timeout_secs = idle_timeout_secs
        self.events = events if events is not None else memories.events
        # Set where the knowledge graph exists: (agent_id, summary_id, memory_ids) → edges.
        self.link_summary: Callable[[str, str, list[str]], None] | None = None
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget every session held in memory (before ``load`` after a restore)."""
        with self._lock:
            self._sessions = {}

    def load(self) -> int:
        """Read every session from the store."""
        for row in self.memories.storage.iter_rows("sessions"):
            session = Session.from_payload(row.payload)
            self._sessions[session.id] = session
        return len(self._sessions)

    def reload_rows(self, agent_id: str, keys: list[str]) -> None:
        """Read these sessions of ``agent_id`` again (another node wrote them)."""
        for key in keys:
            row = self.memories.storage.get_row("sessions", key, agent_id)
            with self._lock:
                if row is None:
                    self._sessions.pop(key, None)
                else:
                    self._sessions[key] = Session.from_payload(row.payload)

    def _now(self) -> int:
        return int(self.memories.clock())

    def _op(self, session: Session) -> Op:
        return Op.put("sessions", session.id, session.to_payload(), group=session.agent_id)

    def _refresh(self, session: Session) -> Session:
        """End an idle session lazily, persisting it when that happens."""
        if session.end_if_idle(self._now()):
            self.memories.storage.write([self._op(session)])
            self.events.emit(
                "session_ended", agent_id=session.agent_id, session_id=session.id, reason="idle"
            )
        return session

    def get(self, caller: Caller, session_id: str) -> Session:
        """A session the caller may see; otherwise 404 (same as unknown)."""
        session = self._sessions.get(session_id)
        if session is None:
            self.memories.follow_all()  # started on another node?
        else:
            self.memories.follow(session.agent_id)  # changed or ended on another node?
        session = self._sessions.get(session_id)
        if session is None or not caller.can_see_agent(session.agent_id):
            raise SessionNotFound(f"session '{session_id}' not found", resource="session")
        return self._refresh(session)

    def find(self, session_id: str | None) -> Session | None:
        """A started session by id, without access checks (for store bookkeeping)."""
        if session_id is None:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            self.memories.follow_all()  # started on another node?
            session = self._sessions.get(session_id)
        return None if session is None else self._refresh(session)

    def start(
        self,
        caller: Caller,
        agent_id: Any,
        metadata: Any = None,
        idle_timeout_secs: Any = None,
        session_id: Any = None,
    ) -> Session:
        """Start a new session for ``agent_id`` (the key needs the agent's namespace)."""
        agent_id = check_agent_id(agent_id)
        if not caller.can_see_agent(agent_id):
            raise NamespaceAccessDenied(f"this key may not start sessions for agent '{agent_id}'")
        if idle_timeout_secs is None:
            timeout = self.idle_timeout_secs
        elif (
            isinstance(idle_timeout_secs, bool)
            or not isinstance(idle_timeout_secs, int)
            or not 0 <= idle_timeout_secs <= MAX_IDLE_TIMEOUT
        ):
            raise InvalidInput(f"'idle_timeout_secs' must be between 0 and {MAX_IDLE_TIMEOUT}")
        else:
            timeout = idle_timeout_secs
        new_id = "sess_" + secrets.token_hex(12) if session_id is None else session_id
        new_id = check_session_id(new_id)
        now = self._now()
        session = Session(
            id=new_id,
            agent_id=agent_id,
            started_at=now,
            metadata=check_metadata(metadata),
            last_activity_at=now,
            idle_timeout_secs=timeout or None,
        )
        with self._lock:
            if new_id in self._sessions:
                raise InvalidInput(f"session '{new_id}' already exists")
            self.memories.storage.write([self._op(session)])
            self._sessions[new_id] = session
        self.events.emit("session_started", agent_id=agent_id, session_id=new_id)
        return session

    def end(self, caller: Caller, session_id: str, summary: Any = None) -> Session:
        """End a session (idempotent); a summary is kept on it and stored as a memory."""
        session = self.get(caller, session_id)
        if summary is not None:
            if not isinstance(summary, str):
                raise InvalidInput("'summary' must be a string")
            if len(summary.encode("utf-8")) > self.memories.max_content_bytes:
                raise InvalidInput(
                    f"'summary' is longer than {self.memories.max_content_bytes} UTF-8 bytes"
                )
        if not session.active and summary is None:
            return session
        ended = Session(**session.__dict__)
        if ended.active:
            ended.ended_at = self._now()
            ended.ended_reason = "client"
        if summary is not None and summary.strip():
            ended.summary = summary
            # The summary memory is linked to the memories it summarises (consolidation).
            linked = [m.id for m in self.memories_of(caller, session)]
            outcome = self.memories.store(
                caller,
                [
                    NewMemory(
                        agent_id=session.agent_id,
                        content=summary,
                        memory_type="semantic",
                        session_id=session.id,
                        tags=["session-summary"],
                        metadata={
                            "session_summary": True,
                            "session_memory_ids": linked[:MAX_LINKED_IDS],
                            "session_memory_count": len(linked),
                        },
                    )
                ],
                extra_ops=[self._op(ended)],
            )
            if self.link_summary is not None and linked:
                self.link_summary(session.agent_id, outcome.memories[0].id, linked)
        else:
            self.memories.storage.write([self._op(ended)])
        self._sessions[session_id] = ended
        if session.active:
            self.events.emit(
                "session_ended", agent_id=ended.agent_id, session_id=ended.id, reason="client"
            )
        return ended

    def touch(self, caller: Caller, session_id: str) -> Session:
        """Count activity on a session; never re-opens an ended one."""
        session = self.get(caller, session_id)
        if session.active:
            session.last_activity_at = self._now()
            self.memories.storage.write([self._op(session)])
        return session

    def activity_op(
        self, session_id: str | None, agent_id: str | None = None
    ) -> tuple[Session | None, list[Op]]:
        """Bookkeeping for a store into ``session_id``: the session and the op recording it.

        A session of another agent is treated as unknown (the id is then only a label), so a
        store never touches, or reveals, a session outside the writer's agent.
        """
        session = self.find(session_id)
        if session is not None and agent_id is not None and session.agent_id != agent_id:
            return None, []
        if session is None or not session.active:
            return session, []
        session.last_activity_at = self._now()
        return session, [self._op(session)]

    def list_for(
        self,
        caller: Caller,
        agent_id: str | None = None,
        active_only: bool = False,
    ) -> list[Session]:
        """Sessions the caller may see, newest first."""
        if agent_id is None:
            self.memories.follow_all()
        else:
            self.memories.follow(agent_id)
        found = []
        for session in list(self._sessions.values()):
            if agent_id is not None and session.agent_id != agent_id:
                continue
            if not caller.can_see_agent(session.agent_id):
                continue
            self._refresh(session)
            if active_only and not session.active:
                continue
            found.append(session)
        found.sort(key=lambda s: (-s.started_at, s.id))
        return found

    def memories_of(self, caller: Caller, session: Session) -> list[Memory]:
        """The session's memories, oldest first."""
        agent = self.memories.agent(caller, session.agent_id)
        if agent is None:
            return []
        found = [m for m in self.memories.live(agent) if m.session_id == session.id]
        found.sort(key=lambda m: (m.created_at, m.id))
        return found

    def memory_count(self, caller: Caller, session: Session) -> int:
        """How many live memories carry the session's id."""
        return len(self.memories_of(caller, session))
