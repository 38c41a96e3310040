"""OpenMemory's five tools, as aliases of ours, so an OpenMemory client works by changing its URL.

OpenMemory's tools take no agent: the user is in the endpoint URL (``/mcp/<client>/http/<user>``),
and so it is here: that user is the ``agent_id``. On plain ``/mcp`` the optional ``agent_id``
argument names it. Argument names are OpenMemory's (``text``, ``query``, ``memory_ids``).
"""

from __future__ import annotations

from dakera_server.engine.access import Scope
from dakera_server.mcp import render
from dakera_server.mcp.table import Arg, Tool, string

__all__ = ["OPENMEMORY_TOOLS"]

USER = Arg(
    "agent_id",
    string("Whose memory; defaults to the user in the URL (/mcp/<client>/http/<user>)."),
)

OPENMEMORY_TOOLS = (
    Tool(
        "add_memories",
        "POST",
        "/v1/memory/store",
        Scope.WRITE,
        "Add a memory",
        "Remember something the user said or asked you to remember (a fact, preference or "
        "decision). Call it whenever the user shares something worth keeping.",
        (Arg("text", string("What to remember."), True, wire="content"), USER),
        render.stored,
        url_agent=True,
        alias_of="dakera_store",
    ),
    Tool(
        "search_memory",
        "POST",
        "/v1/memory/search",
        Scope.READ,
        "Search memory",
        "Search the user's memories for anything relevant to their message. Call it every "
        "time the user asks something that earlier conversations may answer.",
        (Arg("query", string("What to look for."), True), USER),
        render.memories("memories"),
        url_agent=True,
        alias_of="dakera_search",
    ),
    Tool(
        "list_memories",
        "GET",
        "/v1/agents/{agent_id}/memories",
        Scope.READ,
        "List memories",
        "List the user's memories, newest first.",
        (Arg(USER.name, USER.schema, to="path"),),
        render.memories(None),
        url_agent=True,
        alias_of="dakera_agent_memories",
    ),
    Tool(
        "delete_memories",
        "POST",
        "/v1/memory/forget",
        Scope.WRITE,
        "Delete memories",
        "Delete specific memories of the user by id.",
        (
            Arg("memory_ids", {"type": "array", "items": {"type": "string"}, "minItems": 1}, True),
            USER,
        ),
        render.deleted,
        url_agent=True,
        alias_of="dakera_forget",
    ),
    Tool(
        "delete_all_memories",
        "DELETE",
        "/v1/memories/forget/batch",
        Scope.WRITE,
        "Delete all memories",
        "Delete every memory of the user. Irreversible.",
        (USER,),
        render.deleted,
        fixed={"filter": {"min_importance": 0.0}},
        url_agent=True,
    ),
)
