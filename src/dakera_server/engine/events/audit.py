"""Business-event audit (dakera-api.md §4.8): persist every bus event, list, export, stream.

``AuditLog`` is a sink of the ``EventBus``. Recording an event only appends it to a pending
list (the emitting request never waits on disk); a background thread commits the pending events
every ``flush_interval`` seconds in one durable batch, and ``close`` commits whatever is left,
so a clean shutdown loses nothing (a ``kill -9`` can lose the last fraction of a second).

Who sees what: an event about an agent is visible to callers that may see the agent's
namespace; an event about a namespace to callers that may see that namespace; an event about
neither (key lifecycle, encryption rotation) only to unrestricted admin keys.
"""

from __future__ import annotations

import csv
import io
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from dakera_server.engine.access import Caller, Scope, agent_namespace
from dakera_server.engine.events.bus import Event, EventBus, Subscription
from dakera_server.errors import InvalidInput, Unavailable
from dakera_server.storage.eventlog import EventFilter, EventLog, EventRow

__all__ = [
    "MEMORY_EVENT_TYPES",
    "AuditExport",
    "AuditLog",
    "AuditPage",
    "AuditQuery",
    "EventStream",
    "visible_to",
]

logger = logging.getLogger("dakera_server.audit")

MEMORY_EVENT_TYPES = frozenset(
    {
        "stored",
        "recalled",
        "forgotten",
        "consolidated",
        "deduplicated",
        "restored",
        "importance_updated",
        "session_started",
        "session_ended",
    }
)
CSV_COLUMNS = ("id", "event_type", "agent_id", "memory_id", "session_id", "importance", "timestamp")
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000
DEFAULT_EXPORT_LIMIT = 10_000
MAX_EXPORT_LIMIT = 100_000
MAX_PENDING = 100_000
StreamKind = Literal["audit", "memory", "namespace", "global"]


def visible_to(caller: Caller, event: Event | EventRow) -> bool:
    """Whether ``caller`` may see ``event`` (see the module docstring)."""
    if event.agent_id:
        return caller.can_see_agent(event.agent_id)
    if event.namespace:
        return caller.can_see(event.namespace)
    return caller.unrestricted and caller.has(Scope.ADMIN)


def _audit_wire(event: Event) -> dict[str, Any]:
    """The persisted and audit-stream form: no memory content or tags."""
    wire = event.to_wire()
    wire.pop("content", None)
    wire.pop("tags", None)
    return wire


def _int_param(name: str, value: Any, minimum: int = 0) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"'{name}' must be a whole number") from None
    if number < minimum:
        raise InvalidInput(f"'{name}' must be at least {minimum}")
    return number


@dataclass(frozen=True)
class AuditQuery:
    """Validated filters of ``GET /v1/audit`` and ``/v1/audit/export``."""

    agent_id: str | None
    event_type: str | None
    from_ts: int | None
    to_ts: int | None
    limit: int
    before_id: int | None = None

    @classmethod
    def parse(
        cls,
        *,
        agent_id: str | None = None,
        event_type: str | None = None,
        from_ts: Any = None,
        to_ts: Any = None,
        limit: Any = None,
        cursor: Any = None,
        default_limit: int = DEFAULT_LIST_LIMIT,
        max_limit: int = MAX_LIST_LIMIT,
    ) -> AuditQuery:
        """Check the query parameters (400 naming the bad one)."""
        count = _int_param("limit", limit, 1)
        if count is not None and count > max_limit:
            raise InvalidInput(f"'limit' must be at most {max_limit}")
        start, end = _int_param("from", from_ts), _int_param("to", to_ts)
        if start is not None and end is not None and start > end:
            raise InvalidInput("'from' must not be after 'to'")
        return cls(
            agent_id=agent_id or None,
            event_type=event_type or None,
            from_ts=start,
            to_ts=end,
            limit=default_limit if count is None else count,
            before_id=_int_param("cursor", cursor, 1),
        )


@dataclass(frozen=True)
class AuditPage:
    """One page of events, newest first; ``cursor`` fetches the next (older) page."""

    events: list[dict[str, Any]]
    cursor: str | None


@dataclass(frozen=True)
class AuditExport:
    """Events for export, oldest first, in the format asked for."""

    format: Literal["json", "csv"]
    events: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        """``{"events": [...], "count": n}``."""
        return {"events": self.events, "count": len(self.events)}

    def to_csv(self) -> str:
        """CSV with the header of §4.8."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for event in self.events:
            writer.writerow(["" if event.get(c) is None else event[c] for c in CSV_COLUMNS])
        return buffer.getvalue()


@dataclass
class EventStream:
    """A live subscription and how to render each event for its stream."""

    subscription: Subscription
    render: Callable[[Event], dict[str, Any]]


class AuditLog:
    """Durable record of every business event, with filtered reads and live streams."""

    def __init__(self, log: EventLog, bus: EventBus, *, flush_interval: float = 0.2) -> None:
        self.log = log
        self.bus = bus
        self.flush_interval = flush_interval
        self._pending: list[EventRow] = []
        self._pending_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.dropped = 0
        last = log.last_id()
        bus.continue_after(last)
        if log.shared:  # several nodes append: ids from blocks reserved in the store
            bus.number_in_blocks(log.reserve_ids, last)
        bus.add_sink(self.record)
        self._thread = threading.Thread(target=self._run, name="dakera-audit-events", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ writing
    def record(self, event: Event) -> None:
        """The bus sink: queue ``event`` for the next durable batch (never touches disk)."""
        row = EventRow(
            event.id,
            event.timestamp,
            event.event_type,
            event.agent_id,
            event.namespace,
            orjson.dumps(_audit_wire(event)),
        )
        with self._pending_lock:
            if len(self._pending) >= MAX_PENDING:
                self.dropped += 1
                if self.dropped == 1:
                    logger.warning("audit event backlog full: dropping events until it drains")
                return
            self._pending.append(row)
            if len(self._pending) == 1:
                self._wake.set()

    def flush(self) -> int:
        """Commit every pending event now; returns how many were written.

        A store that cannot take them (``Unavailable``: PostgreSQL down) gets them back in the
        pending list, ahead of newer ones, for the next flush.
        """
        with self._flush_lock:
            with self._pending_lock:
                batch, self._pending = self._pending, []
            try:
                self.log.append(batch)
            except Unavailable:
                with self._pending_lock:
                    self._pending = batch + self._pending
                raise
        return len(batch)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.wait(self.flush_interval):
                break
            self._wake.clear()
            try:
                self.flush()
            except Unavailable as exc:
                logger.warning("audit events kept in memory, not yet persisted: %s", exc.message)
                self._wake.set()  # try again after the next interval

    def close(self) -> None:
        """Stop the flusher, commit what is pending, close the file."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)
        self.flush()
        self.log.close()

    # ------------------------------------------------------------------ reading
    def _visible_rows(self, caller: Caller, query: AuditQuery, limit: int) -> list[EventRow]:
        """Up to ``limit`` matching rows the caller may see, newest first."""
        if query.agent_id is not None and not caller.can_see_agent(query.agent_id):
            return []
        self.flush()
        where = EventFilter(
            query.agent_id, query.event_type, query.from_ts, query.to_ts, query.before_id
        )
        if caller.unrestricted and caller.has(Scope.ADMIN):
            return self.log.page(where, limit)
        found: list[EventRow] = []
        batch = max(limit, 200)
        while len(found) < limit:
            rows = self.log.page(where, batch)
            found.extend(r for r in rows if visible_to(caller, r))
            if len(rows) < batch:
                break
            where = EventFilter(
                query.agent_id, query.event_type, query.from_ts, query.to_ts, rows[-1].id
            )
        return found[:limit]

    def list_events(self, caller: Caller, query: AuditQuery) -> AuditPage:
        """A page of events newest first; the cursor is the id to continue below."""
        rows = self._visible_rows(caller, query, query.limit + 1)
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        cursor = str(rows[-1].id) if more and rows else None
        return AuditPage([orjson.loads(r.payload) for r in rows], cursor)

    def export(self, caller: Caller, query: AuditQuery, fmt: str) -> AuditExport:
        """The newest ``query.limit`` matching events, oldest first, as json or csv."""
        kind = fmt.lower()
        if kind == "jsonl":
            kind = "json"
        if kind not in ("json", "csv"):
            raise InvalidInput("'format' must be json or csv")
        rows = self._visible_rows(caller, query, query.limit)
        rows.reverse()
        events = [orjson.loads(r.payload) for r in rows]
        return AuditExport("csv" if kind == "csv" else "json", events)

    def count(self) -> int:
        """How many events are stored (after committing pending ones)."""
        self.flush()
        return self.log.count()

    # ---------------------------------------------------------------- streaming
    def open_stream(
        self,
        caller: Caller,
        kind: StreamKind,
        *,
        agent_id: str | None = None,
        event_type: str | None = None,
        namespace: str | None = None,
    ) -> EventStream:
        """Subscribe to live events for one of the four SSE streams (§1.10, §4.9).

        ``audit``: every event, optionally one agent/type. ``memory``: memory lifecycle events
        (with content). ``namespace``: events of one namespace, including the memory events of
        an agent namespace. ``global``: every event the caller may see.
        """

        def accept(event: Event) -> bool:
            if not visible_to(caller, event):
                return False
            if kind == "memory" and event.event_type not in MEMORY_EVENT_TYPES:
                return False
            if kind == "namespace" and namespace is not None:
                if event.namespace != namespace and (
                    event.agent_id is None or agent_namespace(event.agent_id) != namespace
                ):
                    return False
            if agent_id is not None and event.agent_id != agent_id:
                return False
            return event_type is None or event.event_type == event_type

        render = Event.to_wire if kind == "memory" else _audit_wire
        return EventStream(self.bus.subscribe(accept), render)
