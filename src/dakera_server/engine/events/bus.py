"""Business events: one bus the engine parts emit to, that audit and SSE streams read from.

``emit`` never blocks a request for long: subscribers get events through bounded queues and a
slow subscriber loses events (it is told with ``stream_lagged``), never the writer.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dakera_server.errors import DakeraError

__all__ = ["Event", "EventBus", "Subscription"]


@dataclass(frozen=True)
class Event:
    """One business event; ``timestamp`` is Unix milliseconds (the wire form of §1.10)."""

    id: int
    event_type: str
    timestamp: int
    agent_id: str | None = None
    memory_id: str | None = None
    session_id: str | None = None
    namespace: str | None = None
    importance: float | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # Memory-stream only (``stored``): never persisted by the audit log.
    content: str | None = None
    tags: tuple[str, ...] | None = None

    def to_wire(self) -> dict[str, Any]:
        """JSON form: both ``event_type`` and ``type`` (the SDK's parsers read one or the other)."""
        wire: dict[str, Any] = {
            "id": self.id,
            "event_type": self.event_type,
            "type": self.event_type,
            "timestamp": self.timestamp,
        }
        for name in ("agent_id", "memory_id", "session_id", "namespace", "importance", "reason"):
            value = getattr(self, name)
            if value is not None:
                wire[name] = value
        if self.details:
            wire["details"] = self.details
            # The SDK's DakeraEvent reads op/count/dimension/progress… at the top level.
            for key, value in self.details.items():
                wire.setdefault(key, value)
        if self.content is not None:
            wire["content"] = self.content
        if self.tags is not None:
            wire["tags"] = list(self.tags)
        return wire


class Subscription:
    """A bounded queue of events for one reader (an SSE stream, say)."""

    def __init__(self, bus: EventBus, accept: Callable[[Event], bool], capacity: int) -> None:
        self._bus = bus
        self.accept = accept
        self.queue: queue.Queue[Event] = queue.Queue(maxsize=capacity)
        self.dropped = 0

    def offer(self, event: Event) -> None:
        """Queue ``event`` if it passes the filter; count it as dropped when full."""
        if not self.accept(event):
            return
        try:
            self.queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        """Stop receiving events."""
        self._bus.unsubscribe(self)


logger = logging.getLogger("dakera_server.events")
ID_BLOCK = 1000


class _Blocks:
    """An id iterator over reserved blocks; the next block is reserved when one runs out."""

    def __init__(self, reserve: Callable[[int], int], size: int, after: int) -> None:
        self._reserve = reserve
        self._size = size
        self._lock = threading.Lock()
        self._next = after + 1
        self._end = 0

    def __iter__(self) -> _Blocks:
        return self

    def __next__(self) -> int:
        with self._lock:
            if self._next >= self._end:
                try:
                    first = self._reserve(self._size)
                except DakeraError as exc:
                    logger.warning("event ids not reserved (%s): numbering on", exc.message)
                    first = self._next
                self._next, self._end = first, first + self._size
            value = self._next
            self._next += 1
            return value


class EventBus:
    """Fan-out of business events to sinks (audit log) and subscribers (streams)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._ids: Iterator[int] = itertools.count(1)
        self._lock = threading.Lock()
        self._subscribers: list[Subscription] = []
        self._sinks: list[Callable[[Event], None]] = []

    def continue_after(self, last_id: int) -> None:
        """Number the next event ``last_id + 1`` (ids stay unique across restarts)."""
        with self._lock:
            self._ids = itertools.count(last_id + 1)

    def number_in_blocks(
        self, reserve: Callable[[int], int], after: int, size: int = ID_BLOCK
    ) -> None:
        """Take ids from blocks ``reserve(size)`` hands out (a store shared by several nodes:
        no two nodes number two events alike). A reservation that fails (store unreachable)
        keeps numbering after the last id handed out, logged once per failure."""
        with self._lock:
            self._ids = _Blocks(reserve, size, after)

    def add_sink(self, sink: Callable[[Event], None]) -> None:
        """Call ``sink`` with every event (e.g. to persist it); sinks must be quick."""
        with self._lock:
            self._sinks.append(sink)

    def subscribe(
        self, accept: Callable[[Event], bool] | None = None, capacity: int = 1000
    ) -> Subscription:
        """A new subscription receiving events that pass ``accept``."""
        subscription = Subscription(self, accept or (lambda _event: True), capacity)
        with self._lock:
            self._subscribers.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Remove ``subscription`` (idempotent)."""
        with self._lock:
            if subscription in self._subscribers:
                self._subscribers.remove(subscription)

    def emit(self, event_type: str, **fields: Any) -> Event:
        """Publish an event to every sink and subscriber; returns it."""
        event = Event(
            id=next(self._ids),
            event_type=event_type,
            timestamp=int(self.clock() * 1000),
            **fields,
        )
        with self._lock:
            sinks = list(self._sinks)
            subscribers = list(self._subscribers)
        for sink in sinks:
            sink(event)
        for subscription in subscribers:
            subscription.offer(event)
        return event
