"""One document import: checked in the request, carried out by a background job.

``ImportRequest`` holds what the client sent; ``prepare`` checks all of it (memory fields with
the memory engine's own rules, chunking options, media type, size and bomb limits) and fixes
the document id, so every refusal is a synchronous 4xx and the 202 means the job has what it
needs. ``run`` extracts, chunks and stores: every chunk memory and the document record commit
in one store transaction through ``MemoryEngine.store`` (the batch path), so a failed job
leaves nothing behind.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from dakera_server.engine.documents.chunker import ChunkPlan
from dakera_server.engine.documents.extract import document_kind, precheck
from dakera_server.engine.documents.limits import ImportLimits
from dakera_server.engine.documents.models import default_document_id
from dakera_server.engine.memory.writes import NewMemory, validate_new
from dakera_server.engine.rules import check_memory_id
from dakera_server.errors import InvalidInput, PayloadTooLarge

__all__ = ["ImportRequest", "Prepared", "prepare"]

STRATEGIES = ("structure", "fixed")
MEMORY_FIELDS = (
    "memory_type",
    "session_id",
    "importance",
    "tags",
    "metadata",
    "ttl_seconds",
    "expires_at",
)
# Room left in the model's window for the breadcrumb line and [CLS]/[SEP], and a margin for
# token estimates that run low (chunker.estimate_tokens).
BREADCRUMB_TOKENS = 16
ESTIMATE_MARGIN = 0.9


@dataclass
class ImportRequest:
    """A document import as the client asked for it (both routes)."""

    agent_id: Any
    data: bytes
    media_type: str
    title: Any = None
    document_id: Any = None
    fields: dict[str, Any] = field(default_factory=dict)  # memory fields for every chunk
    chunking: dict[str, Any] | None = None
    decompose: Any = None
    attachment_ref: str | None = None
    source_namespace: str | None = None
    filename: str | None = None


@dataclass(frozen=True)
class Prepared:
    """A checked import: everything the job needs."""

    request: ImportRequest
    kind: str
    agent_id: str
    document_id: str
    sha256: str
    fingerprint: str
    plan: ChunkPlan
    title: str | None
    pages: int | None
    decompose: bool


def _plan(chunking: dict[str, Any] | None, defaults: ChunkPlan, model_window: int) -> ChunkPlan:
    options = chunking or {}
    max_tokens = options.get("max_tokens", defaults.max_tokens)
    overlap = options.get("overlap_tokens", defaults.overlap_tokens)
    strategy = options.get("strategy", defaults.strategy)
    for name, value, low in (("max_tokens", max_tokens, 16), ("overlap_tokens", overlap, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 8192:
            raise InvalidInput(f"'chunking.{name}' must be a whole number from {low} to 8192")
    if strategy not in STRATEGIES:
        raise InvalidInput(f"'chunking.strategy' must be one of {', '.join(STRATEGIES)}")
    cap = int((model_window - 2) * ESTIMATE_MARGIN) - BREADCRUMB_TOKENS
    budget = max(16, min(max_tokens, cap))
    return ChunkPlan(budget, min(overlap, budget // 4), strategy)


def prepare(
    request: ImportRequest,
    *,
    defaults: ChunkPlan,
    model_window: int,
    limits: ImportLimits,
    max_content_bytes: int,
    now: int,
    text_only: bool,
) -> Prepared:
    """Check an import completely; raise the 4xx a bad one deserves."""
    fields = request.fields
    # The memory engine's own checks on the fields every chunk will carry.
    sample = validate_new(
        NewMemory(agent_id=request.agent_id, content="-", **fields),
        now,
        max_content_bytes=max_content_bytes,
        default_ttl=lambda _a, _t: None,
    )
    if request.decompose not in (None, False, True):
        raise InvalidInput("'decompose' must be true or false")
    if request.decompose:
        raise InvalidInput(
            "'decompose' is not supported by this server: a document chunk is already a "
            "retrieval unit; omit it or send false"
        )
    title = request.title
    if title is not None and (not isinstance(title, str) or len(title) > 512):
        raise InvalidInput("'title' must be a string of at most 512 characters")
    kind = document_kind(request.media_type, text_only=text_only)
    if not request.data.strip():
        raise InvalidInput("'content' must not be empty")
    if len(request.data) > limits.max_text_bytes and kind not in ("pdf", "docx"):
        raise PayloadTooLarge(
            f"the document is larger than {limits.max_text_bytes} bytes "
            "(DAKERA_DOCUMENT_MAX_TEXT_BYTES)"
        )
    pages = precheck(kind, request.data, limits)
    plan = _plan(request.chunking, defaults, model_window)
    sha256 = hashlib.sha256(request.data).hexdigest()
    document_id = (
        default_document_id(sample.agent_id, sha256)
        if request.document_id is None
        else check_memory_id(request.document_id, "document_id")
    )
    options = {
        "sha256": sha256,
        "kind": kind,
        "title": title,
        "plan": [plan.max_tokens, plan.overlap_tokens, plan.strategy],
        "fields": fields,
        "source": [request.source_namespace, request.attachment_ref],
    }
    fingerprint = hashlib.sha256(orjson.dumps(options, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return Prepared(
        request=request,
        kind=kind,
        agent_id=sample.agent_id,
        document_id=document_id,
        sha256=sha256,
        fingerprint=fingerprint[:32],
        plan=plan,
        title=title,
        pages=pages,
        decompose=bool(request.decompose),
    )
