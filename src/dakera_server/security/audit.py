"""The HTTP audit log: one JSON line per request (and per business event), written off-path.

Entry fields (``security.md``): ``timestamp`` (ISO 8601, UTC, ms), ``method``, ``path``,
``status``, ``latency_ms``, ``key_name``, ``key_scope``, ``namespace``, ``agent_id``, ``ip``,
``user_agent``; ``request_body``/``response_body`` when enabled, truncated to the limit;
``mcp_tool`` on a request an MCP tool call dispatched (the tool's name).
Business events (key created/rotated/revoked, policy changed, memories forgotten …) are their
own entries with ``"kind": "event"``; request entries carry ``"kind": "request"``.

Never written: the ``Authorization`` and ``X-API-Key`` headers, the query string (it may hold
``?api_key=``), the presented key wherever it appears, and the value of any body field whose
name marks a secret (``key``, ``new_key``, ``api_key``, ``password``, ``token`` …).

The layer sits outside authentication, so refusals (401, 403, 429) are audited too; it reads
who the caller was from the ``Caller`` the auth layer leaves in ``scope["state"]``. The
body-size limit sits outside this layer (ARCHITECTURE.md's order) and answers its 413s itself;
it reports them through ``refusal_auditor`` (same record, same exclusions), and this layer
writes nothing for a request whose answer that layer took over (``BODY_REFUSED`` in the state).

Writing: the request path only puts a small record on a bounded queue (``put_nowait``). One
background thread turns records into lines (parsing, redaction, truncation happen there) and
writes them. A full queue drops the record, counts it and logs once per overflow; ``close``
drains everything, flushes and fsyncs, so a clean shutdown loses no entry.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dakera_server.engine.access import Caller
from dakera_server.engine.events.bus import Event
from dakera_server.security.auth import presented_secret
from dakera_server.security.bodylimit import BODY_REFUSED, RefusalSink
from dakera_server.security.redaction import (
    REDACTED,
    SECRET_FIELDS,
    redact,
    redact_text,
    render_body,
)
from dakera_server.security.targets import Target, body_agent_id, path_target

__all__ = [
    "SECRET_FIELDS",
    "AuditMiddleware",
    "AuditWriter",
    "RequestRecord",
    "redact",
    "redact_text",
    "refusal_auditor",
    "render_body",
]

logger = logging.getLogger("dakera_server.audit")

# Bodies are captured up to this size for parsing (agent_id, redaction); the log keeps at most
# the configured limit of what is left after redaction.
CAPTURE_BYTES = 64 * 1024
MCP_TOOL_STATE = "dakera.mcp_tool"  # the tool an MCP call dispatched this request for
QUEUE_CAPACITY = 10_000
STOP = object()


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


@dataclass
class RequestRecord:
    """What the request path hands to the writer; ``render`` runs on the writer thread."""

    started: float
    method: str
    path: str
    query: bytes
    status: int
    latency_ms: float
    caller: Caller | None
    target: Target | None
    ip: str | None
    user_agent: str | None
    secrets: tuple[str, ...]
    max_body: int
    request_body: bytes | None = None
    request_complete: bool = True
    log_request_body: bool = False
    response_body: bytes | None = None
    response_complete: bool = True
    mcp_tool: str | None = None

    def render(self) -> dict[str, Any]:
        """The log entry."""
        target = self.target or path_target(self.path, self.query)
        if target.agent_id is None and target.namespace is None and self.request_body:
            agent = body_agent_id(self.request_body, self.request_complete)
            if agent is not None:
                target = Target.of_agent(agent)
        path = self.path
        for secret in self.secrets:
            path = path.replace(secret, REDACTED)
        entry: dict[str, Any] = {
            "kind": "request",
            "timestamp": _iso(self.started),
            "method": self.method,
            "path": path,
            "status": self.status,
            "latency_ms": round(self.latency_ms, 3),
            "key_name": None if self.caller is None else self.caller.name,
            "key_scope": None if self.caller is None else self.caller.scope.wire,
            "key_id": None if self.caller is None else self.caller.key_id,
            "namespace": target.namespace,
            "agent_id": target.agent_id,
            "ip": self.ip,
            "user_agent": self.user_agent,
        }
        if self.mcp_tool is not None:
            entry["mcp_tool"] = self.mcp_tool
        if self.log_request_body and self.request_body is not None:
            entry["request_body"] = render_body(
                self.request_body, self.request_complete, self.max_body, self.secrets
            )
        if self.response_body is not None:
            entry["response_body"] = render_body(
                self.response_body, self.response_complete, self.max_body, self.secrets
            )
        return entry


class AuditWriter:
    """Background JSON-lines writer with a bounded queue.

    ``path`` is appended to (created ``0600``: entries may hold request bodies); ``None``
    writes to standard output.
    """

    def __init__(
        self,
        path: Path | None,
        *,
        capacity: int = QUEUE_CAPACITY,
        stream: IO[bytes] | None = None,
    ) -> None:
        self.path = path
        self._queue: queue.Queue[object] = queue.Queue(maxsize=capacity)
        self._file: IO[bytes]
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._file = os.fdopen(descriptor, "ab")
            self._owned = True
        else:
            self._file = stream if stream is not None else sys.stdout.buffer
            self._owned = False
        self.written = 0
        self.dropped = 0
        self._overflowing = False
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="dakera-audit-log", daemon=True)
        self._thread.start()

    def submit(self, item: RequestRecord | dict[str, Any]) -> None:
        """Queue an entry without waiting; a full queue drops it (counted, logged once)."""
        if self._closed:
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._lock:
                self.dropped += 1
                first = not self._overflowing
                self._overflowing = True
            if first:
                logger.warning(
                    "audit log queue full (%d entries): dropping entries until it drains",
                    self._queue.maxsize,
                )

    def write_event(self, event: Event) -> None:
        """EventBus sink: a business event becomes its own entry."""
        wire = event.to_wire()
        wire.pop("content", None)
        wire.pop("tags", None)
        wire.pop("type", None)
        wire["event_id"] = wire.pop("id")
        wire["timestamp_ms"] = wire.pop("timestamp")
        self.submit({"kind": "event", "timestamp": _iso(event.timestamp / 1000), **redact(wire)})

    def _line(self, item: object) -> bytes:
        entry = item.render() if isinstance(item, RequestRecord) else item
        return orjson.dumps(entry) + b"\n"

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is STOP:
                break
            self._file.write(self._line(item))
            self.written += 1
            if self._queue.empty():
                self._file.flush()
                with self._lock:
                    if self._overflowing:
                        logger.warning("audit log queue drained; %d entries dropped", self.dropped)
                    self._overflowing = False
        self._file.flush()

    def close(self) -> None:
        """Drain every queued entry, flush and fsync, then stop (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(STOP)
        self._thread.join()
        if self._owned:
            os.fsync(self._file.fileno())
            self._file.close()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _excluded(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def _prefixes(exclude_paths: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(p.rstrip("/") or "/" for p in exclude_paths)


def _record(scope: Scope, status: int, started_wall: float, latency_ms: float) -> RequestRecord:
    """The record of one request from its scope (who, what, from where); bodies are added by
    the caller. Reads the ``Caller`` and target that inner layers left in the state."""
    state = scope.get("state") or {}
    caller = state.get("caller")
    secret = presented_secret(scope)
    client = scope.get("client")
    return RequestRecord(
        started=started_wall,
        method=scope["method"],
        path=scope["path"],
        query=scope.get("query_string", b""),
        status=status,
        latency_ms=latency_ms,
        caller=caller if isinstance(caller, Caller) else None,
        target=state.get("dakera.target"),
        ip=client[0] if client else None,
        user_agent=_header(scope, b"user-agent"),
        secrets=(secret,) if secret else (),
        max_body=0,
        # Set only by the MCP layer's in-process dispatch: no HTTP client can write ASGI state.
        mcp_tool=state.get(MCP_TOOL_STATE),
    )


def refusal_auditor(
    writer: AuditWriter,
    *,
    exclude_paths: tuple[str, ...] = (),
    response_body: bool = False,
    max_body_size: int = 4096,
    clock: Callable[[], float] = time.time,
) -> RefusalSink:
    """The sink through which a layer outside the audit layer (the body-size limit) audits the
    answers it gives itself: one entry with the usual fields, never the refused request body
    (it was not read, or not whole), the error body when response bodies are logged."""
    prefixes = _prefixes(exclude_paths)

    def audit(scope: Scope, status: int, started: float, body: bytes) -> None:
        if _excluded(scope["path"], prefixes):
            return
        latency = time.perf_counter() - started
        record = _record(scope, status, clock() - latency, latency * 1000.0)
        record.max_body = max_body_size
        if response_body:
            record.response_body = body
        writer.submit(record)

    return audit


class AuditMiddleware:
    """Pure ASGI layer: time the request, note who and what, hand a record to the writer."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        writer: AuditWriter,
        exclude_paths: tuple[str, ...] = (),
        request_body: bool = False,
        response_body: bool = False,
        max_body_size: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.writer = writer
        self.exclude = _prefixes(exclude_paths)
        self.request_body = request_body
        self.response_body = response_body
        self.max_body = max_body_size
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _excluded(scope["path"], self.exclude):
            await self.app(scope, receive, send)
            return
        started_wall = self.clock()
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        # The body is teed for the agent_id even when bodies are not logged.
        capture_request = scope["method"] in ("POST", "PUT", "PATCH", "DELETE")
        request_chunks: list[bytes] = []
        request_size = 0
        response_chunks: list[bytes] = []
        response_size = 0
        status = 500
        streaming = False

        async def tee_receive() -> Message:
            nonlocal request_size
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                if request_size < CAPTURE_BYTES:
                    request_chunks.append(chunk)
                request_size += len(chunk)
            return message

        async def tee_send(message: Message) -> None:
            nonlocal status, response_size, streaming
            if message["type"] == "http.response.start":
                status = int(message["status"])
                content_type = dict(message.get("headers", ())).get(b"content-type", b"")
                streaming = content_type.startswith(b"text/event-stream")
            elif message["type"] == "http.response.body" and self.response_body and not streaming:
                chunk = message.get("body", b"")
                if response_size < CAPTURE_BYTES:
                    response_chunks.append(chunk)
                response_size += len(chunk)
            await send(message)

        try:
            await self.app(scope, tee_receive if capture_request else receive, tee_send)
        finally:
            if not state.get(BODY_REFUSED):  # else the body-size limit audits its own answer
                record = _record(
                    scope, status, started_wall, (time.perf_counter() - started) * 1000.0
                )
                record.max_body = self.max_body
                if capture_request:
                    record.request_body = b"".join(request_chunks)
                    record.request_complete = request_size <= CAPTURE_BYTES
                record.log_request_body = self.request_body
                if self.response_body and not streaming:
                    record.response_body = b"".join(response_chunks)
                    record.response_complete = response_size <= CAPTURE_BYTES
                self.writer.submit(record)
