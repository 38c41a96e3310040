"""The engine's records: memories and sessions, with their wire and storage forms.

Wire forms follow dakera-api.md §3.9 and §7.1: timestamps are integer Unix seconds, the memory
is flat here (routers wrap it where the contract wants an envelope).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from dakera_server.engine.access import agent_namespace

__all__ = ["EVENT_TIME_KEY", "Memory", "Session"]

EVENT_TIME_KEY = "_dakera_event_time"


@dataclass
class Memory:
    """One agent memory. Mutable: recall updates access stats, feedback importance."""

    id: str
    agent_id: str
    content: str
    memory_type: str = "episodic"
    importance: float = 0.5
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    session_id: str | None = None
    created_at: int = 0
    updated_at: int = 0
    last_accessed_at: int = 0
    access_count: int = 0
    ttl_seconds: int | None = None
    expires_at: int | None = None
    attachment_ref: str | None = None
    # Insertion order within the agent (1, 2, 3 ...; 0 = stored before it was kept). Internal:
    # it orders memories that share an event time, such as the turns of a chat log stored with
    # only their session's date, so "the next turn" still means something (``timeline.py``).
    seq: int = 0

    @property
    def event_time(self) -> int:
        """When the event happened: ``_dakera_event_time`` if recorded, else ingest time."""
        if self.metadata:
            value = self.metadata.get(EVENT_TIME_KEY)
            if isinstance(value, int):
                return value
        return self.created_at

    def is_expired(self, now: float) -> bool:
        """Whether the memory's expiry has passed (expired memories are never returned)."""
        return self.expires_at is not None and self.expires_at <= now

    def to_wire(self) -> dict[str, Any]:
        """The flat JSON form of §7.1."""
        wire = asdict(self)
        del wire["seq"]
        wire["namespace"] = agent_namespace(self.agent_id)
        return wire

    def to_payload(self) -> bytes:
        """Bytes persisted for this memory (everything but the vector)."""
        return orjson.dumps(asdict(self))

    @classmethod
    def from_payload(cls, payload: bytes) -> Memory:
        """Rebuild a memory from ``to_payload`` bytes."""
        return cls(**orjson.loads(payload))


@dataclass
class Session:
    """A conversation session of one agent (§3.9)."""

    id: str
    agent_id: str
    started_at: int
    metadata: dict[str, Any] | None = None
    ended_at: int | None = None
    summary: str | None = None
    last_activity_at: int = 0
    ended_reason: str | None = None
    idle_timeout_secs: int | None = None

    def idle_deadline(self) -> int | None:
        """When the session ends for idleness, or ``None`` if it never does."""
        if self.ended_at is not None or not self.idle_timeout_secs:
            return None
        return self.last_activity_at + self.idle_timeout_secs

    def end_if_idle(self, now: float) -> bool:
        """End the session when its idle deadline has passed; True if that happened now."""
        deadline = self.idle_deadline()
        if deadline is not None and now >= deadline:
            self.ended_at = deadline
            self.ended_reason = "idle"
            return True
        return False

    @property
    def active(self) -> bool:
        """Not ended."""
        return self.ended_at is None

    def to_wire(self, memory_count: int) -> dict[str, Any]:
        """The flat JSON form, with the number of memories stored in it."""
        wire = asdict(self)
        wire["memory_count"] = memory_count
        wire["active"] = self.active
        wire["idle_since"] = self.last_activity_at if self.active else None
        return wire

    def to_payload(self) -> bytes:
        """Bytes persisted for this session."""
        return orjson.dumps(asdict(self))

    @classmethod
    def from_payload(cls, payload: bytes) -> Session:
        """Rebuild a session from ``to_payload`` bytes."""
        return cls(**orjson.loads(payload))
