"""Back-pressure: past capacity, a request is refused at once with 503 instead of queueing.

Without a bound, every request a server cannot serve yet waits in its thread pool's queue: at
twice its capacity the wait grows by a second every second, every caller times out, and the
work done for them is wasted. This layer caps the requests in progress at
``max_in_flight``; one more is answered ``503 SERVICE_UNAVAILABLE`` with ``Retry-After: 1``
in well under a millisecond, which the SDK retries with backoff. The longest queue inside the
server is then ``max_in_flight`` requests deep, so a request that is admitted is served in
about ``max_in_flight`` / throughput seconds at worst (``docs/benchmarks.md``: 64 at ~200
requests/s is ~0.3 s).

A request counts from the moment it passes this layer until its response *starts*: an event
stream (SSE), whose response starts at once and then lasts for hours, holds no slot. Health
probes and metrics (``exempt_paths``) are never counted or refused, so an orchestrator still
sees a busy server as alive. It sits after the rate limiter (ARCHITECTURE's request path): a
client over its own limit gets its 429 first; only traffic the limits allow competes for
capacity. The counter lives on the event loop (one thread), so it needs no lock.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dakera_server.errors import Unavailable
from dakera_server.security.responses import error_response

__all__ = ["BackpressureMiddleware"]


class BackpressureMiddleware:
    """Pure ASGI layer: at most ``max_in_flight`` requests in progress (0 = no limit)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_in_flight: int,
        exempt_paths: frozenset[str] = frozenset(),
        retry_after: int = 1,
    ) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.exempt_paths = exempt_paths
        self.in_flight = 0
        self.refused = 0
        """Requests answered 503 by this layer since start (for metrics and tests)."""
        self._refusal = Unavailable(
            f"the server is at capacity ({max_in_flight} requests in progress); "
            f"retry after {retry_after} second{'s' if retry_after != 1 else ''}",
            retry_after=retry_after,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.max_in_flight <= 0 or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            self.refused += 1
            await error_response(self._refusal)(scope, receive, send)
            return
        self.in_flight += 1
        held = True

        async def releasing_send(message: Message) -> None:
            nonlocal held
            if held and message["type"] == "http.response.start":
                held = False
                self.in_flight -= 1
            await send(message)

        try:
            await self.app(scope, receive, releasing_send)
        finally:
            if held:
                self.in_flight -= 1
