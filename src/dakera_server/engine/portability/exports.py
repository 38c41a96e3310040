"""Export an agent's memories as a file: ``jsonl``, ``csv``, ``mem0`` or ``zep``.

Every format imports back losslessly (``formats.py``): ``jsonl`` and ``csv`` carry every field
of the record; the ``mem0`` and ``zep`` documents carry the foreign shape their readers expect
plus, under ``metadata.dakera``, the fields those shapes have no place for (importance, type,
tags, session, exact timestamps, access statistics, TTL). Expired memories are left out, as
the contract says; memories are written in creation order (then id), so two exports of the same
data are byte-identical.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from dakera_server.engine.access import Caller
from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.models import Memory
from dakera_server.engine.portability.formats import DAKERA_KEY, content_hash, iso
from dakera_server.engine.rules import RESERVED_DERIVED_ID, check_agent_id
from dakera_server.errors import InvalidInput, NamespaceAccessDenied

__all__ = ["EXPORT_FORMATS", "Export", "export_memories", "native_record"]

EXPORT_FORMATS = ("jsonl", "csv", "mem0", "zep")
MEDIA_TYPES = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "mem0": "application/json",
    "zep": "application/json",
}
CSV_COLUMNS = (
    "id", "agent_id", "content", "memory_type", "importance", "tags", "metadata", "session_id",
    "created_at", "updated_at", "last_accessed_at", "access_count", "expires_at", "ttl_seconds",
)  # fmt: skip
CHUNK_ROWS = 2000
CARRIED = (
    "importance", "memory_type", "tags", "session_id", "created_at", "updated_at",
    "last_accessed_at", "access_count", "expires_at", "ttl_seconds",
)  # fmt: skip


@dataclass
class Export:
    """An export about to be streamed: its media type, row count and body chunks."""

    format: str
    media_type: str
    count: int
    chunks: Iterator[bytes]


def native_record(memory: Memory) -> dict[str, Any]:
    """The lossless record of one memory (a ``jsonl`` line)."""
    return {name: getattr(memory, name) for name in CSV_COLUMNS}


def _mem0(memory: Memory) -> dict[str, Any]:
    ours = {name: getattr(memory, name) for name in CARRIED}
    return {
        "id": memory.id,
        "memory": memory.content,
        "hash": content_hash(memory.content),
        "user_id": None,
        "agent_id": memory.agent_id,
        "run_id": memory.session_id,
        "categories": list(memory.tags),
        "metadata": {**(memory.metadata or {}), DAKERA_KEY: ours},
        "created_at": iso(memory.created_at),
        "updated_at": iso(memory.updated_at),
    }


def _zep(memory: Memory) -> dict[str, Any]:
    ours = {name: getattr(memory, name) for name in CARRIED}
    return {
        "uuid": memory.id,
        "role": "memory",
        "role_type": "norole",
        "content": memory.content,
        "metadata": {**(memory.metadata or {}), DAKERA_KEY: ours},
        "created_at": iso(memory.created_at),
        "updated_at": iso(memory.updated_at),
        "token_count": 0,
    }


def export_memories(
    engine: MemoryEngine, events: EventBus, caller: Caller, agent_id: Any, fmt: Any
) -> Export:
    """The agent's live memories in ``fmt`` (an unknown agent exports an empty file)."""
    agent_id = check_agent_id(agent_id)
    chosen = "jsonl" if fmt in (None, "") else fmt
    if chosen not in EXPORT_FORMATS:
        raise InvalidInput(f"format '{chosen}' is not one of {', '.join(EXPORT_FORMATS)}")
    if not caller.can_see_agent(agent_id):
        raise NamespaceAccessDenied(f"this key may not read agent '{agent_id}'")
    agent = engine.agent(caller, agent_id)
    memories = [] if agent is None else engine.live(agent)
    memories = [m for m in memories if not RESERVED_DERIVED_ID.fullmatch(m.id)]
    memories.sort(key=lambda m: (m.created_at, m.id))
    events.emit(
        "export_completed",
        agent_id=agent_id,
        reason=chosen,
        details={"format": chosen, "count": len(memories)},
    )
    return Export(chosen, MEDIA_TYPES[chosen], len(memories), _chunks(chosen, memories))


def _chunks(fmt: str, memories: list[Memory]) -> Iterator[bytes]:
    if fmt == "jsonl":
        for start in range(0, len(memories), CHUNK_ROWS):
            part = memories[start : start + CHUNK_ROWS]
            yield b"".join(orjson.dumps(native_record(m)) + b"\n" for m in part)
    elif fmt == "csv":
        yield from _csv(memories)
    else:
        key, shape = ("memories", _mem0) if fmt == "mem0" else ("messages", _zep)
        yield b'{"' + key.encode() + b'":['
        for start in range(0, len(memories), CHUNK_ROWS):
            part = memories[start : start + CHUNK_ROWS]
            body = b",".join(orjson.dumps(shape(m)) for m in part)
            yield (b"," if start else b"") + body
        yield b"]}"


def _csv(memories: list[Memory]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for index, memory in enumerate(memories, 1):
        record = native_record(memory)
        record["tags"] = orjson.dumps(record["tags"]).decode()
        record["metadata"] = (
            "" if memory.metadata is None else orjson.dumps(memory.metadata).decode()
        )
        writer.writerow(["" if record[c] is None else record[c] for c in CSV_COLUMNS])
        if index % CHUNK_ROWS == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")
