"""Server-Sent Events framing for the event streams (dakera-api.md §1.10).

Each stream starts with the handshake ``{"type":"connected","timestamp":<ms>}`` (also as
``event: connected``), then one ``data:`` line of JSON per event, and a ``:`` comment every
``keepalive`` seconds so proxies keep the connection open. When the subscriber's queue
overflowed, a ``stream_lagged`` event says how many were dropped (the client should reconnect).

The subscription's queue is filled by the emitting threads; this side polls it briefly (at most
``POLL_SECONDS`` of added latency) rather than parking a worker thread per open stream.
"""

from __future__ import annotations

import asyncio
import queue
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import StreamingResponse

from dakera_server.engine.events.audit import EventStream

__all__ = ["sse_response"]

POLL_SECONDS = 0.05
KEEPALIVE_SECONDS = 15.0
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _frame(payload: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(payload) + b"\n\n"


async def _frames(stream: EventStream, keepalive: float) -> AsyncIterator[bytes]:
    subscription = stream.subscription
    reported = 0
    try:
        now_ms = int(time.time() * 1000)
        yield _frame(
            {"type": "connected", "event_type": "connected", "timestamp": now_ms}, "connected"
        )
        last_sent = time.monotonic()
        while True:
            try:
                event = subscription.queue.get_nowait()
            except queue.Empty:
                if subscription.dropped > reported:
                    dropped, reported = subscription.dropped - reported, subscription.dropped
                    yield _frame(
                        {
                            "type": "stream_lagged",
                            "event_type": "stream_lagged",
                            "timestamp": int(time.time() * 1000),
                            "dropped": dropped,
                            "hint": "events were dropped; reconnect to resume",
                        }
                    )
                    last_sent = time.monotonic()
                if time.monotonic() - last_sent >= keepalive:
                    yield b": keep-alive\n\n"
                    last_sent = time.monotonic()
                await asyncio.sleep(POLL_SECONDS)
                continue
            yield _frame(stream.render(event))
            last_sent = time.monotonic()
    finally:
        subscription.close()


def sse_response(stream: EventStream, keepalive: float = KEEPALIVE_SECONDS) -> StreamingResponse:
    """A ``text/event-stream`` response that runs until the client goes away."""
    return StreamingResponse(
        _frames(stream, keepalive), media_type="text/event-stream; charset=utf-8", headers=HEADERS
    )
