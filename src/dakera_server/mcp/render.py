"""Tool results: compact text a model can read in a few lines, plus structured content.

The REST answer is the source; the text keeps what an agent needs (ids, scores, content) and the
structured content keeps the ids and scores a program needs. Memory content longer than
``Limits.max_content_chars`` is cut, and the text and the item both say so (``dakera_memory_get``
reads one memory whole).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from dakera_server.mcp.table import Limits, Rendered, Renderer

__all__ = [
    "agents",
    "deleted",
    "error_text",
    "memories",
    "memory",
    "session",
    "sessions",
    "stored",
    "stored_batch",
    "summary",
    "vector_hits",
]

SUMMARY_CHARS = 4000
MEMORY_FIELDS = ("id", "agent_id", "memory_type", "importance", "tags", "session_id", "created_at")


def _cut(content: str, limits: Limits) -> tuple[str, bool]:
    if len(content) <= limits.max_content_chars:
        return content, False
    return content[: limits.max_content_chars], True


def _memory_item(wire: Mapping[str, Any], limits: Limits, score: Any = None) -> dict[str, Any]:
    content, cut = _cut(str(wire.get("content", "")), limits)
    item: dict[str, Any] = {name: wire.get(name) for name in MEMORY_FIELDS if name in wire}
    item["content"] = content
    if score is not None:
        item["score"] = score
    if cut:
        item["content_truncated"] = True
        item["content_length"] = len(str(wire.get("content", "")))
    return item


def _line(index: int, item: Mapping[str, Any]) -> str:
    score = f" score {item['score']:.3f}" if isinstance(item.get("score"), float) else ""
    tags = f" tags {','.join(item['tags'])}" if item.get("tags") else ""
    line = f"{index}. [{item.get('id')}{score} importance {item.get('importance')}{tags}] "
    line += str(item.get("content", "")).replace("\n", " ")
    if item.get("content_truncated"):
        line += f" … [cut at {len(item['content'])} of {item['content_length']} characters]"
    return line


def memories(key: str | None, empty: str = "No memories found.") -> Renderer:
    """A list of memories (bare, or ``{memory, score}`` envelopes), at most ``top_k``/``limit``."""

    def render(answer: Any, args: Mapping[str, Any], limits: Limits) -> Rendered:
        raw = answer.get(key or "memories", []) if isinstance(answer, dict) else answer or []
        bound = args.get("top_k", args.get("limit"))
        if isinstance(bound, int) and bound >= 0:
            raw = raw[:bound]
        items = []
        for entry in raw:
            if isinstance(entry, dict) and isinstance(entry.get("memory"), dict):
                items.append(_memory_item(entry["memory"], limits, entry.get("score")))
            elif isinstance(entry, dict):
                items.append(_memory_item(entry, limits))
        cut = sum(1 for item in items if item.get("content_truncated"))
        lines = [_line(i, item) for i, item in enumerate(items, 1)]
        head = f"{len(items)} memor{'y' if len(items) == 1 else 'ies'}"
        if cut:
            head += f" ({cut} cut to {limits.max_content_chars} characters)"
        text = head + ":\n" + "\n".join(lines) if items else empty
        return Rendered(text, {"memories": items, "count": len(items), "truncated_count": cut})

    return render


def memory(cut: bool) -> Renderer:
    """One memory (the whole content when ``cut`` is false)."""

    def render(answer: Any, args: Mapping[str, Any], limits: Limits) -> Rendered:
        unbounded = Limits(max_content_chars=max(len(str(answer.get("content", ""))), 1))
        item = _memory_item(answer, limits if cut else unbounded)
        return Rendered(_line(1, item)[3:], {"memory": item})

    return render


def stored(answer: Any, args: Mapping[str, Any], limits: Limits) -> Rendered:
    """The answer of a store: the new memory's id."""
    wire = answer.get("memory", {})
    text = f"Stored memory {wire.get('id')} for agent {wire.get('agent_id')}"
    text += f" (importance {wire.get('importance')})."
    structured = {"id": wire.get("id"), "agent_id": wire.get("agent_id"), "memory": wire}
    if answer.get("truncated"):
        text += " The content was truncated to the server's limit."
    if answer.get("warnings"):
        text += " Warnings: " + "; ".join(answer["warnings"])
    return Rendered(text, structured)


def stored_batch(answer: Any, args: Mapping[str, Any], limits: Limits) -> Rendered:
    """The answer of a batch store: the new ids, in order."""
    ids = [m.get("id") for m in answer.get("stored", [])]
    text = f"Stored {len(ids)} memories: {', '.join(str(i) for i in ids)}."
    if answer.get("warnings"):
        text += " Warnings: " + "; ".join(answer["warnings"])
    return Rendered(text, {"ids": ids, "stored_count": answer.get("stored_count", len(ids))})


def deleted(answer: Any, args: Mapping[str, Any], limits: Limits) -> Rendered:
    """A deletion count."""
    count = answer.get("deleted_count", 0)
    return Rendered(f"Deleted {count} memor{'y' if count == 1 else 'ies'}.", dict(answer))


def session(verb: str) -> Renderer:
    """A ``{session: {...}}`` answer."""

    def render(answer: Any, args: Mapping[str, Any], limits: Limits) -> Rendered:
        wire = answer.get("session", {})
        text = f"Session {wire.get('id')} of agent {wire.get('agent_id')} {verb}"
        text += f" ({wire.get('memory_count', 0)} memories)."
        return Rendered(text, {"session_id": wire.get("id"), "session": wire})

    return render


def sessions(answer: Any, args: Mapping[str, Any], limits: Limits) -> Rendered:
    """A page of sessions."""
    found = answer.get("sessions", []) if isinstance(answer, dict) else answer
    lines = [
        f"- {s.get('id')} agent {s.get('agent_id')} "
        f"{'active' if s.get('active') else 'ended'}, {s.get('memory_count', 0)} memories"
        for s in found
    ]
    text = f"{len(found)} sessions:\n" + "\n".join(lines) if found else "No sessions."
    return Rendered(text, {"sessions": found, "count": len(found)})


def agents(answer: Any, args: Mapping[str, Any], limits: Limits) -> Rendered:
    """The agents the key may see."""
    found = answer if isinstance(answer, list) else []
    lines = [
        f"- {a.get('agent_id')}: {a.get('memory_count', 0)} memories, "
        f"{a.get('session_count', 0)} sessions"
        for a in found
    ]
    text = f"{len(found)} agents:\n" + "\n".join(lines) if found else "No agents."
    return Rendered(text, {"agents": found, "count": len(found)})


def vector_hits(text_field: str) -> Renderer:
    """Namespace search results: id, score, a cut text, metadata."""

    def render(answer: Any, args: Mapping[str, Any], limits: Limits) -> Rendered:
        hits = []
        for hit in answer.get("results", []):
            item = {"id": hit.get("id"), "score": hit.get("score")}
            if hit.get("metadata") is not None:
                item["metadata"] = hit["metadata"]
            text = hit.get(text_field, hit.get("text", hit.get("content")))
            if isinstance(text, str):
                item["text"], cut = _cut(text, limits)
                if cut:
                    item["text_truncated"] = True
            hits.append(item)
        lines = [
            f"{i}. [{h['id']} score {h['score']}] {str(h.get('text', '')).replace(chr(10), ' ')}"
            for i, h in enumerate(hits, 1)
        ]
        text = f"{len(hits)} results:\n" + "\n".join(lines) if hits else "No results."
        return Rendered(text, {"results": hits, "count": len(hits)})

    return render


def summary(label: str) -> Renderer:
    """Any other answer: compact JSON after a label, cut to a few thousand characters."""

    def render(answer: Any, args: Mapping[str, Any], limits: Limits) -> Rendered:
        compact = orjson.dumps(answer).decode()
        if len(compact) > SUMMARY_CHARS:
            compact = compact[:SUMMARY_CHARS] + " … [cut; structured content has all of it]"
        structured = answer if isinstance(answer, dict) else {"items": answer}
        return Rendered(f"{label}: {compact}", structured)

    return render


def error_text(status: int, body: Any, retry_after: str | None) -> tuple[str, dict[str, Any]]:
    """A refused or failed call in words, with the REST error's code (and when to retry)."""
    body = body if isinstance(body, dict) else {}
    message = str(body.get("error") or "the request failed")
    code = str(body.get("code") or "ERROR")
    text = f"Refused (HTTP {status} {code}): {message}"
    structured: dict[str, Any] = {"status": status, "code": code, "error": message}
    if status in (429, 503):
        wait = int(retry_after) if retry_after and retry_after.isdigit() else None
        structured["retry_after"] = wait
        text += " Retry later" + (f", after {wait} second(s)." if wait else ".")
    return text, structured
