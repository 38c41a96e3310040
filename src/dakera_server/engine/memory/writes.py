"""What a client asks to store or change, checked into a ``Memory`` before anything is written.

Validation is whole and side-effect free: ``validate_new`` and ``apply_changes`` either return
the record to write or raise ``InvalidInput`` naming the field, so a rejected request writes
nothing. ``MemoryEngine`` embeds and commits what they return.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dakera_server.engine.access import Caller
from dakera_server.engine.memory.models import EVENT_TIME_KEY, Memory
from dakera_server.engine.rules import (
    MEMORY_TYPES,
    check_agent_id,
    check_importance,
    check_memory_id,
    check_metadata,
    check_session_id,
    check_tags,
    check_ttl,
    parse_event_time,
)
from dakera_server.engine.text.embedding import EmbeddingBatch
from dakera_server.errors import InvalidInput, NamespaceAccessDenied
from dakera_server.storage.base import Op

__all__ = [
    "NewMemory",
    "StoreOutcome",
    "Truncation",
    "apply_changes",
    "new_memory_id",
    "validate_new",
]


@dataclass
class NewMemory:
    """A memory as a client asked for it, before validation."""

    agent_id: str
    content: Any
    memory_type: Any = "episodic"
    importance: Any = 0.5
    tags: Any = None
    metadata: Any = None
    session_id: Any = None
    ttl_seconds: Any = None
    expires_at: Any = None
    event_time: Any = None
    id: Any = None
    attachment_ref: Any = None
    # Engine-made reserved keys (``_dakera_document`` of a document chunk): merged after the
    # client's metadata is checked, so clients still cannot set them.
    reserved_metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class Truncation:
    """Set when the content was longer than the embedding model reads."""

    memory_id: str
    content_tokens: int
    embedded_tokens: int
    max_tokens: int

    def to_wire(self) -> dict[str, Any]:
        """The truncation fields of the store answer (§3.7)."""
        return {
            "truncated": True,
            "content_tokens": self.content_tokens,
            "embedded_tokens": self.embedded_tokens,
            "max_tokens": self.max_tokens,
            "tokens_estimated": False,
            "windows": 0,
        }


def truncations_of(
    memories: Sequence[Memory], embedded: EmbeddingBatch, max_tokens: int
) -> list[Truncation]:
    """The memories whose content the model read only in part."""
    return [
        Truncation(m.id, embedded.content_tokens[i], embedded.embedded_tokens[i], max_tokens)
        for i, m in enumerate(memories)
        if embedded.truncated(i)
    ]


def check_batch(caller: Caller, memories: Sequence[Memory]) -> None:
    """Refuse the whole batch for an agent the key may not write, or an id given twice."""
    seen: set[tuple[str, str]] = set()
    for memory in memories:
        if not caller.can_see_agent(memory.agent_id):
            raise NamespaceAccessDenied(f"this key may not write agent '{memory.agent_id}'")
        key = (memory.agent_id, memory.id)
        if key in seen:
            raise InvalidInput(f"memory id '{memory.id}' appears twice in the batch")
        seen.add(key)


@dataclass
class StoreOutcome:
    """What a store or batch store did."""

    memories: list[Memory]
    truncations: list[Truncation]
    embedding_ms: float
    extra_ops: list[Op] = field(default_factory=list)


def new_memory_id() -> str:
    """A fresh server-side memory id (``mem_`` + 24 hex; never the reserved ``mem_s`` form)."""
    return "mem_" + secrets.token_hex(12).replace("s", "a")


def validate_new(
    item: NewMemory,
    now: int,
    *,
    max_content_bytes: int,
    default_ttl: Callable[[str, str], int | None],
    where: str = "",
) -> Memory:
    """The ``Memory`` that ``item`` asks for, or ``InvalidInput`` naming the first bad field
    (``where`` prefixes field names in a batch: ``memories[3].content``)."""
    agent_id = check_agent_id(item.agent_id)
    content = item.content
    if not isinstance(content, str) or not content.strip():
        raise InvalidInput(f"'{where}content' must be a non-empty string")
    if len(content.encode("utf-8")) > max_content_bytes:
        raise InvalidInput(f"'{where}content' is longer than {max_content_bytes} UTF-8 bytes")
    memory_type = item.memory_type if item.memory_type is not None else "episodic"
    if not isinstance(memory_type, str) or memory_type.lower() not in MEMORY_TYPES:
        raise InvalidInput(f"'{where}memory_type' must be one of {', '.join(MEMORY_TYPES)}")
    importance = 0.5 if item.importance is None else check_importance(item.importance)
    metadata = check_metadata(item.metadata, f"{where}metadata")
    event_time = parse_event_time(item.event_time, f"{where}event_time")
    if event_time is not None:
        metadata = {**(metadata or {}), EVENT_TIME_KEY: event_time}
    if item.reserved_metadata:
        metadata = {**(metadata or {}), **item.reserved_metadata}
    ttl = check_ttl(item.ttl_seconds, f"{where}ttl_seconds")
    expires_at = item.expires_at
    if expires_at is not None:
        if isinstance(expires_at, bool) or not isinstance(expires_at, int):
            raise InvalidInput(f"'{where}expires_at' must be Unix seconds")
    elif ttl is not None:
        expires_at = now + ttl
    elif (ttl := default_ttl(agent_id, memory_type.lower())) is not None:
        expires_at = now + ttl
    session_id = (
        None if item.session_id is None else check_session_id(item.session_id, "session_id")
    )
    memory_id = new_memory_id() if item.id is None else check_memory_id(item.id, f"{where}id")
    return Memory(
        id=memory_id,
        agent_id=agent_id,
        content=content,
        memory_type=memory_type.lower(),
        importance=importance,
        tags=check_tags(item.tags, f"{where}tags"),
        metadata=metadata,
        session_id=session_id,
        created_at=now,
        updated_at=now,
        last_accessed_at=now,
        ttl_seconds=ttl,
        expires_at=expires_at,
        attachment_ref=item.attachment_ref if isinstance(item.attachment_ref, str) else None,
    )


def apply_changes(
    current: Memory, changes: dict[str, Any], now: int, *, max_content_bytes: int
) -> Memory:
    """A copy of ``current`` with ``changes`` applied (``InvalidInput`` for a bad one)."""
    updated = Memory(**{**current.__dict__})
    if "content" in changes and changes["content"] is not None:
        content = changes["content"]
        if not isinstance(content, str) or not content.strip():
            raise InvalidInput("'content' must be a non-empty string")
        if len(content.encode("utf-8")) > max_content_bytes:
            raise InvalidInput(f"'content' is longer than {max_content_bytes} UTF-8 bytes")
        updated.content = content
    if changes.get("memory_type") is not None:
        kind = changes["memory_type"]
        if not isinstance(kind, str) or kind.lower() not in MEMORY_TYPES:
            raise InvalidInput(f"'memory_type' must be one of {', '.join(MEMORY_TYPES)}")
        updated.memory_type = kind.lower()
    if changes.get("importance") is not None:
        updated.importance = check_importance(changes["importance"])
    if changes.get("tags") is not None:
        updated.tags = check_tags(changes["tags"])
    if changes.get("metadata") is not None:
        metadata = check_metadata(changes["metadata"]) or {}
        keep = {k: v for k, v in (current.metadata or {}).items() if k.startswith("_dakera_")}
        updated.metadata = {**metadata, **keep}
    updated.updated_at = now
    return updated
