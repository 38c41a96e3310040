"""The tool table: every ``dakera_*`` tool, the REST route it mirrors and that route's scope.

Names follow Dakera's own MCP server where it has a tool for the same action; the descriptions
are written for a model choosing a tool. The knowledge-graph and namespace search tools are in
``search_tools.py``, OpenMemory's names in ``aliases.py``; ``TOOLS`` is all of them. To add a
tool, add one ``Tool`` here (or in ``portability_tools.py`` for import/export); the scope test
then checks its route and scope against the served routes.
"""

from __future__ import annotations

from typing import Any

from dakera_server.engine.access import Scope
from dakera_server.mcp import render
from dakera_server.mcp.aliases import OPENMEMORY_TOOLS
from dakera_server.mcp.args import (
    AGENT,
    AGENT_PATH,
    IDS,
    IMPORTANCE,
    LIMIT,
    MEMORY_ID_PATH,
    MEMORY_TYPE,
    METADATA,
    OFFSET,
    SESSION_PATH,
    TAGS,
    TOP_K,
)
from dakera_server.mcp.portability_tools import PORTABILITY_TOOLS
from dakera_server.mcp.search_tools import GRAPH_TOOLS, NAMESPACE_TOOLS
from dakera_server.mcp.table import Arg, Tool, string

__all__ = ["TOOLS", "TOOLS_BY_NAME"]


def _memory_args() -> tuple[Arg, ...]:
    return (
        AGENT,
        Arg("content", string("The text to remember, self-contained (who, what, when)."), True),
        MEMORY_TYPE,
        IMPORTANCE,
        TAGS,
        Arg("session_id", string("Session to file it under (dakera_session_start).")),
        METADATA,
        Arg(
            "ttl_seconds",
            {"type": "integer", "minimum": 1, "description": "Forget after N seconds."},
        ),
    )


def _batch_item() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "content": {"type": "string"},
            "memory_type": MEMORY_TYPE.schema,
            "importance": IMPORTANCE.schema,
            "tags": TAGS.schema,
            "session_id": {"type": "string"},
            "metadata": METADATA.schema,
        },
        "required": ["content"],
    }


MEMORY_TOOLS = (
    Tool(
        "dakera_store",
        "POST",
        "/v1/memory/store",
        Scope.WRITE,
        "Store a memory",
        "Remember one fact, preference, decision or event for an agent. Write it so it makes "
        "sense on its own later. Returns the new memory's id.",
        _memory_args(),
        render.stored,
    ),
    Tool(
        "dakera_batch_store",
        "POST",
        "/v1/memories/store/batch",
        Scope.WRITE,
        "Store many memories",
        "Remember several memories of one agent in one call (1-1000, all or nothing). Returns "
        "their ids in order.",
        (
            AGENT,
            Arg(
                "memories",
                {"type": "array", "minItems": 1, "maxItems": 1000, "items": _batch_item()},
                True,
            ),
        ),
        render.stored_batch,
    ),
    Tool(
        "dakera_recall",
        "POST",
        "/v1/memory/recall",
        Scope.READ,
        "Recall memories",
        "Find an agent's memories most relevant to a question (meaning and keywords, weighted "
        "by importance and recency). Use before answering anything that may depend on what "
        "was said before. Returns at most top_k memories, each with its id and score; long "
        "content is cut (dakera_memory_get reads one whole).",
        (
            AGENT,
            Arg("query", string("What to look for, in natural language."), True),
            TOP_K,
            Arg("min_importance", {"type": "number", "minimum": 0, "maximum": 1}),
            TAGS,
            MEMORY_TYPE,
            Arg("session_id", string("Only memories of this session.")),
            Arg("since", string("Only memories created at or after this ISO-8601 time.")),
            Arg("until", string("Only memories created at or before this ISO-8601 time.")),
        ),
        render.memories("memories"),
    ),
    Tool(
        "dakera_search",
        "POST",
        "/v1/memory/search",
        Scope.READ,
        "Search memories",
        "Search an agent's memories by meaning, narrowed by tags or memory type; like "
        "dakera_recall with a default of 10 results.",
        (AGENT, Arg("query", string("What to look for."), True), TOP_K, TAGS, MEMORY_TYPE),
        render.memories("memories"),
    ),
    Tool(
        "dakera_memory_get",
        "GET",
        "/v1/memory/get/{memory_id}",
        Scope.READ,
        "Read one memory",
        "Read one memory whole, by id (content is never cut here).",
        (MEMORY_ID_PATH, Arg("agent_id", AGENT.schema, to="query")),
        render.memory(cut=False),
    ),
    Tool(
        "dakera_memory_update",
        "PUT",
        "/v1/memory/update/{memory_id}",
        Scope.WRITE,
        "Update a memory",
        "Change a memory's content, importance, tags, type or metadata, keeping its id "
        "(content changes are re-embedded). Prefer this to forget + store.",
        (
            MEMORY_ID_PATH,
            Arg("agent_id", AGENT.schema, True, "query"),
            Arg("content", string("The new content.")),
            IMPORTANCE,
            TAGS,
            MEMORY_TYPE,
            METADATA,
        ),
        render.memory(cut=True),
    ),
    Tool(
        "dakera_forget",
        "POST",
        "/v1/memory/forget",
        Scope.WRITE,
        "Forget memories",
        "Delete memories of an agent by id, permanently. To demote a memory instead, lower "
        "its importance with dakera_memory_importance.",
        (AGENT, IDS),
        render.deleted,
    ),
    Tool(
        "dakera_memory_importance",
        "POST",
        "/v1/memory/importance",
        Scope.WRITE,
        "Set importance",
        "Set the importance (0-1) of one or more memories: 0.9+ keeps them from decaying, "
        "low values let them fade without deleting them.",
        (AGENT, IDS, Arg("importance", IMPORTANCE.schema, True)),
        render.summary("Importance updated"),
    ),
    Tool(
        "dakera_memory_feedback",
        "POST",
        "/v1/memory/feedback",
        Scope.WRITE,
        "Give feedback",
        "Tell the memory whether a recalled memory helped: upvote raises its importance, "
        "downvote lowers it, flag marks it for review.",
        (
            AGENT,
            Arg("memory_id", string("The memory's id."), True),
            Arg("signal", {"type": "string", "enum": ["upvote", "downvote", "flag"]}, True),
        ),
        render.summary("Feedback recorded"),
    ),
)

SESSION_AGENT_TOOLS = (
    Tool(
        "dakera_session_start",
        "POST",
        "/v1/sessions/start",
        Scope.WRITE,
        "Start a session",
        "Open a session (a conversation or task) for an agent; pass its id as session_id when "
        "storing memories so they can be read back together.",
        (AGENT, METADATA),
        render.session("started"),
    ),
    Tool(
        "dakera_session_end",
        "POST",
        "/v1/sessions/{session_id}/end",
        Scope.WRITE,
        "End a session",
        "Close a session, optionally with a summary of what happened.",
        (SESSION_PATH, Arg("summary", string("What the session achieved."))),
        render.session("ended"),
    ),
    Tool(
        "dakera_session_list",
        "GET",
        "/v1/sessions",
        Scope.READ,
        "List sessions",
        "List sessions, newest first, optionally of one agent or only the open ones.",
        (
            Arg("agent_id", AGENT.schema, to="query"),
            Arg("active_only", {"type": "boolean"}, to="query"),
            LIMIT,
            OFFSET,
        ),
        render.sessions,
    ),
    Tool(
        "dakera_session_memories",
        "GET",
        "/v1/sessions/{session_id}/memories",
        Scope.READ,
        "Memories of a session",
        "List the memories stored in one session, oldest first.",
        (SESSION_PATH, LIMIT, OFFSET),
        render.memories("memories", "The session has no memories."),
    ),
    Tool(
        "dakera_agent_list",
        "GET",
        "/v1/agents",
        Scope.READ,
        "List agents",
        "List the agents whose memories this key may see, with memory and session counts.",
        (),
        render.agents,
    ),
    Tool(
        "dakera_agent_stats",
        "GET",
        "/v1/agents/{agent_id}/stats",
        Scope.READ,
        "Agent statistics",
        "Counts for one agent: memories by type, average importance, sessions.",
        (AGENT_PATH,),
        render.summary("Agent statistics"),
    ),
    Tool(
        "dakera_agent_memories",
        "GET",
        "/v1/agents/{agent_id}/memories",
        Scope.READ,
        "Recent memories",
        "Page through an agent's memories, newest first, without a query.",
        (AGENT_PATH, LIMIT, OFFSET),
        render.memories(None),
    ),
    Tool(
        "dakera_wake_up",
        "GET",
        "/v1/agents/{agent_id}/wake-up",
        Scope.READ,
        "Wake-up context",
        "An agent's most important, recently used memories, with no query: call it at the "
        "start of a conversation.",
        (AGENT_PATH, Arg("top_n", {"type": "integer", "minimum": 1, "maximum": 100}, to="query")),
        render.memories("memories"),
    ),
)

TOOLS: tuple[Tool, ...] = (
    *MEMORY_TOOLS,
    *SESSION_AGENT_TOOLS,
    *GRAPH_TOOLS,
    *NAMESPACE_TOOLS,
    *PORTABILITY_TOOLS,
    *OPENMEMORY_TOOLS,
)
TOOLS_BY_NAME = {tool.name: tool for tool in TOOLS}
