"""Arguments several tools share (agent, ids, tags, limits), with schemas written for a model."""

from __future__ import annotations

from dakera_server.mcp.table import Arg, string

__all__ = [
    "AGENT",
    "AGENT_PATH",
    "FILTER",
    "IDS",
    "IMPORTANCE",
    "LIMIT",
    "MEMORY_ID_PATH",
    "MEMORY_TYPE",
    "MEMORY_TYPES",
    "METADATA",
    "NAMESPACE",
    "OFFSET",
    "SESSION_PATH",
    "TAGS",
    "TOP_K",
]

MEMORY_TYPES = ["episodic", "semantic", "procedural", "working"]

AGENT = Arg(
    "agent_id",
    string("Whose memory: a stable id for the agent or user, e.g. 'claude-desktop' or 'alice'."),
    required=True,
)
AGENT_PATH = Arg(AGENT.name, AGENT.schema, required=True, to="path")
MEMORY_ID_PATH = Arg(
    "memory_id", string("The memory's id (as returned by store or recall)."), True, "path"
)
SESSION_PATH = Arg(
    "session_id", string("The session's id (from dakera_session_start)."), True, "path"
)
NAMESPACE = Arg("namespace", string("The vector namespace to search."), True, "path")
TAGS = Arg(
    "tags", {"type": "array", "items": {"type": "string"}, "description": "Tags (all must match)."}
)
MEMORY_TYPE = Arg(
    "memory_type", {"type": "string", "enum": MEMORY_TYPES, "description": "Kind of memory."}
)
IMPORTANCE = Arg(
    "importance",
    {"type": "number", "minimum": 0, "maximum": 1, "description": "0-1; 0.8+ resists decay."},
)
TOP_K = Arg(
    "top_k",
    {"type": "integer", "minimum": 1, "maximum": 50, "description": "Most results (default 5)."},
)
FILTER = Arg(
    "filter", {"type": "object", "description": 'Metadata filter, e.g. {"lang": {"$eq": "en"}}.'}
)
LIMIT = Arg(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": 500, "description": "Page size."},
    to="query",
)
OFFSET = Arg(
    "offset", {"type": "integer", "minimum": 0, "description": "Items to skip."}, to="query"
)
METADATA = Arg("metadata", {"type": "object", "description": "Free-form JSON kept with it."})
IDS = Arg(
    "memory_ids",
    {"type": "array", "items": {"type": "string"}, "minItems": 1, "description": "Memory ids."},
    required=True,
)
