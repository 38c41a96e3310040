"""Import and export as tools: ``dakera_memory_import`` (``POST /v1/import``) and
``dakera_memory_export`` (``GET /v1/export``), with the scopes of those routes.

An import goes through the route's JSON form (``{"data", "agent_id", "format", "conflict"}``):
every row meets the same checks as a REST import and a refused row is reported by number. An
export answers the file itself; the tool's text shows how much came back and its beginning, and
the structured content carries the whole file (``data``), since a cut export is no export.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from dakera_server.engine.access import Scope
from dakera_server.mcp import render
from dakera_server.mcp.args import AGENT
from dakera_server.mcp.table import Arg, Limits, Rendered, Tool, string

__all__ = ["PORTABILITY_TOOLS"]

FORMATS = ["jsonl", "csv", "mem0", "zep"]
PREVIEW_CHARS = 2000


def _exported(answer: Any, args: Mapping[str, Any], limits: Limits) -> Rendered:
    data = answer if isinstance(answer, str) else orjson.dumps(answer).decode()
    fmt = str(args.get("format") or "jsonl")
    count = sum(1 for line in data.splitlines() if line.strip()) if fmt == "jsonl" else None
    head = f"Exported {count} memories" if count is not None else "Exported"
    head += f" of agent {args.get('agent_id')} as {fmt} ({len(data)} characters)"
    preview = data[:PREVIEW_CHARS]
    if len(data) > PREVIEW_CHARS:
        preview += " … [cut; structured content has the whole file]"
    return Rendered(f"{head}:\n{preview}", {"format": fmt, "characters": len(data), "data": data})


PORTABILITY_TOOLS = (
    Tool(
        "dakera_memory_import",
        "POST",
        "/v1/import",
        Scope.WRITE,
        "Import memories",
        "Bring memories in from a file's contents: jsonl (one memory object per line, e.g. a "
        'dakera_memory_export), csv with a header row, a Mem0 export ({"memories": [...]}) or '
        'a Zep export ({"messages": [...]}). Bad rows are reported by number and skipped; '
        "re-importing the same file does not duplicate (conflict 'skip', the default).",
        (
            AGENT,
            Arg(
                "data",
                {
                    "description": "The file's contents: a string, or an array of memory objects.",
                    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}],
                },
                True,
            ),
            Arg("format", string("The file's format (detected when left out).", enum=FORMATS)),
            Arg(
                "conflict",
                string(
                    "When an id exists: skip it, overwrite it, or import under new ids.",
                    enum=["skip", "overwrite", "new_ids"],
                ),
            ),
        ),
        render.summary("Import job"),
    ),
    Tool(
        "dakera_memory_export",
        "GET",
        "/v1/export",
        Scope.READ,
        "Export memories",
        "Take an agent's memories out as a file (jsonl by default, which imports back without "
        "loss; csv, mem0 or zep for other tools).",
        (
            Arg(AGENT.name, AGENT.schema, required=True, to="query"),
            Arg("format", string("The file's format.", enum=FORMATS), to="query"),
        ),
        _exported,
    ),
)
