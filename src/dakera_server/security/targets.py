"""What a request is about: its namespace, agent and (for rate limits) operation kind.

Shared by the rate-limit layer (per-namespace windows) and the audit layer (entry fields). The
namespace comes from the path (``/v1/namespaces/{ns}/…``, ``/v1/agents/{id}/…``), the
``agent_id`` query parameter, or the ``agent_id`` of a JSON body (agent memories live in
``_dakera_agent_<agent_id>``). Nothing here trusts the value: it only names a counter or a log
field; the route validates it again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs

import orjson

from dakera_server.engine.access import agent_namespace

__all__ = ["Operation", "Target", "body_agent_id", "operation_of", "path_target"]

Operation = Literal["store", "recall"]

# Agent-memory routes whose body names the agent (§3.7, §3.8).
BODY_OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", "/v1/memory/store"): "store",
    ("POST", "/v1/memories/store/batch"): "store",
    ("POST", "/v1/memory/recall"): "recall",
    ("POST", "/v1/memory/search"): "recall",
    ("POST", "/v1/memories/recall/batch"): "recall",
}
# Vector-namespace routes (§3.3-3.6, §4.13): the last path segments after the namespace.
NAMESPACE_OPERATIONS: dict[str, Operation] = {
    "vectors": "store",
    "upsert-text": "store",
    "upsert-columns": "store",
    "fulltext/index": "store",
    "query": "recall",
    "query-text": "recall",
    "batch-query": "recall",
    "batch-query-text": "recall",
    "fulltext/search": "recall",
    "hybrid": "recall",
    "multi-vector": "recall",
    "unified-query": "recall",
}
NAMESPACE_PATH = re.compile(r"^/v1/(?:admin/)?namespaces/([^/]+)(?:/(.*))?$")
AGENT_PATH = re.compile(r"^/v1/agents/([^/]+)(?:/.*)?$")
AGENT_ID_IN_JSON = re.compile(rb'"agent_id"\s*:\s*"((?:[^"\\]|\\.){1,256})"')


@dataclass(frozen=True)
class Target:
    """The namespace and agent a request concerns (either may be unknown)."""

    namespace: str | None = None
    agent_id: str | None = None

    @classmethod
    def of_agent(cls, agent_id: str | None) -> Target:
        """The target of an agent's memories."""
        if not agent_id:
            return cls()
        return cls(agent_namespace(agent_id), agent_id)


def operation_of(method: str, path: str) -> tuple[Operation | None, bool]:
    """The operation kind of a request, and whether its namespace is in the JSON body."""
    kind = BODY_OPERATIONS.get((method, path))
    if kind is not None:
        return kind, True
    if method == "POST":
        found = NAMESPACE_PATH.match(path)
        if found and found.group(2):
            return NAMESPACE_OPERATIONS.get(found.group(2)), False
    return None, False


def path_target(path: str, query_string: bytes = b"") -> Target:
    """The target named by the path or the ``agent_id`` query parameter."""
    found = NAMESPACE_PATH.match(path)
    if found:
        return Target(found.group(1))
    found = AGENT_PATH.match(path)
    if found:
        return Target.of_agent(found.group(1))
    if b"agent_id=" in query_string:
        values = parse_qs(query_string.decode("latin-1")).get("agent_id")
        if values:
            return Target.of_agent(values[0])
    return Target()


def body_agent_id(body: bytes, complete: bool = True) -> str | None:
    """The top-level ``agent_id`` of a JSON body.

    A complete body is parsed; a truncated prefix (audit captures are capped) is searched for
    the first ``"agent_id": "…"`` instead.
    """
    if not body:
        return None
    if complete:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        value = parsed.get("agent_id") if isinstance(parsed, dict) else None
        return value if isinstance(value, str) and value else None
    found = AGENT_ID_IN_JSON.search(body)
    if found is None:
        return None
    try:
        value = orjson.loads(b'"' + found.group(1) + b'"')
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, str) else None
